//! Logging: one line per event, with the request id of the request it belongs to.

use std::io::IsTerminal;

use lakests_config::{LogFormat, Logging};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber from `logging.*`. Safe to call more than once (later calls
/// keep the first subscriber). Logs go to standard error. Fails on an invalid `logging.level`.
pub fn init(logging: &Logging) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&logging.level).map_err(|e| {
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
