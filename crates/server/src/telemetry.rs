//! Logging: one line per event, with the request id of the request it belongs to.

use std::io::IsTerminal;

use lakests_config::{LogFormat, Logging};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber from `logging.*`. Safe to call more than once (later calls
/// keep the first subscriber). Logs go to standard error. Fails on an invalid `logging.level`.
pub fn init(logging: &Logging) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter_directives(&logging.level)).map_err(|e| {
        anyhow::anyhow!(
            "logging.level: {:?} is not a valid filter: {e}",
            logging.level
        )
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match logging.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    Ok(())
}

/// The authenticator's crate was called `lakests_oidc` until 2026-12-03; a filter written then, e.g.
/// `lakests_oidc=debug,info`, still selects it: the old target is read as the new one.
fn filter_directives(level: &str) -> String {
    level
        .split(',')
        .map(|d| match d.trim().strip_prefix("lakests_oidc") {
            Some(rest) if rest.is_empty() || rest.starts_with(['=', ':', '[']) => {
                format!("lakests_authenticator{rest}")
            }
            _ => d.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::filter_directives;

    #[test]
    fn the_old_name_of_the_authenticator_target_still_selects_it() {
        assert_eq!(
            filter_directives("lakests_oidc=debug,info"),
            "lakests_authenticator=debug,info"
        );
        assert_eq!(
            filter_directives("lakests_oidc::service=trace"),
            "lakests_authenticator::service=trace"
        );
        assert_eq!(
            filter_directives("lakests_oidcx=debug"),
            "lakests_oidcx=debug"
        );
        assert_eq!(filter_directives("warn"), "warn");
    }
}
