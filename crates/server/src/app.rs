//! Building and running the configured roles.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use lakests_config::Config;
use lakests_core::sts::{Provisioning, StsPolicy, StsService};
use lakests_core::token::TokenIssuer;
use lakests_core::{Authenticator, Clock, Store, SystemClock};
use tokio::net::TcpListener;

use crate::remote::RemoteAuthenticator;
use crate::sts_routes::StsState;

pub use lakests_api::GRANTED_TTL_HEADER;

struct Role {
    name: &'static str,
    listener: TcpListener,
    router: Router,
}

/// The configured roles, bound and ready to serve.
pub struct Application {
    roles: Vec<Role>,
    store: Arc<dyn Store>,
    sts_addr: Option<SocketAddr>,
    authenticator_addr: Option<SocketAddr>,
    idp_addr: Option<SocketAddr>,
    limits: lakests_http::ServeLimits,
    clock: Arc<dyn Clock>,
    audit: lakests_config::Audit,
    authorization_addr: Option<SocketAddr>,
}

impl Application {
    /// Builds every role the configuration turns on, with the system clock.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Builds every role with an injected clock: opens the store (running migrations), binds
    /// each role's listener (port 0 picks a free port; see the `*_addr` accessors).
    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::build_with_listeners(config, clock, Listeners::default()).await
    }

    /// [`Application::build_with_clock`], serving each role whose listener is given on that
    /// listener instead of binding its configured address: a caller that must know a port
    /// before the configuration is written (an issuer URL names the IdP's port) binds it first
    /// and keeps it, so no other process can take it in between.
    pub async fn build_with_listeners(
        config: Config,
        clock: Arc<dyn Clock>,
        mut listeners: Listeners,
    ) -> anyhow::Result<Self> {
        let store = lakests_store::open_cached(
            &config.database,
            &config.sqlite_path(),
            &config.auth.cache,
            clock.clone(),
        )
        .await
        .context("cannot open the database")?;
        let mut roles = Vec::new();

        let mut idp_addr = None;
        if config.idp.enabled {
            let listener = bind(listeners.idp.take(), &config.idp.listen_address, "idp").await?;
            let addr = listener.local_addr()?;
            let issuer = config
                .idp
                .issuer
                .clone()
                .unwrap_or_else(|| format!("http://{addr}"));
            let idp = lakests_devidp::DevIdp::new(
                &config.idp,
                issuer.clone(),
                &config.data_dir.join("idp-keys"),
                clock.clone(),
            )
            .context("cannot start the development IdP")?;

            roles.push(Role {
                name: "idp",
                listener,
                router: lakests_devidp::router(Arc::new(idp)),
            });
            idp_addr = Some(addr);
        }

        // The authorization API (lakeFS's auth.api.endpoint): on its own listener, or sharing
        // the authenticator's.
        let mut authorization_addr = None;
        let mut shared_authz = None;
        if config.authorization.enabled {
            let secret = config
                .auth
                .encrypt
                .secret_key
                .as_ref()
                .context("authorization.enabled requires auth.encrypt.secret_key")?;
            let state = lakests_authz::state(
                store.clone(),
                clock.clone(),
                secret.expose().as_bytes(),
                config.authorization.api_token.as_ref().map(|t| t.expose()),
            )
            .map_err(|e| anyhow::anyhow!("cannot start the authorization API: {e}"))?;
            match &config.authorization.listen_address {
                Some(addr) => {
                    let listener =
                        bind(listeners.authorization.take(), addr, "authorization").await?;
                    authorization_addr = Some(listener.local_addr()?);
                    roles.push(Role {
                        name: "authorization",
                        listener,
                        router: lakests_authz::router(state),
                    });
                }
                None => shared_authz = Some(state),
            }
        }

        let mut authenticator_addr = None;
        let mut in_process: Option<Arc<lakests_authenticator::AuthenticatorService>> = None;
        if config.authenticator_enabled() {
            let service = Arc::new(
                lakests_authenticator::AuthenticatorService::new(
                    &config.authenticator,
                    store.clone(),
                    clock.clone(),
                )
                .context("cannot start the authenticator")?,
            );
            let listener = bind(
                listeners.authenticator.take(),
                &config.authenticator.listen_address,
                "authenticator",
            )
            .await?;
            authenticator_addr = Some(listener.local_addr()?);
            let discovery = login_discovery(&config);
            let mut routes = lakests_authenticator::routes(service.clone(), discovery);
            if let Some(state) = shared_authz.take() {
                authorization_addr = authenticator_addr;
                routes = routes.merge(lakests_authz::routes(state, false));
            }
            // Single sign-on in the lakeFS web UI, on the same listener (one ingress path).
            if config.authenticator.ui_sso.enabled {
                let ui = lakests_authenticator::UiSso::new(&config, service.clone())
                    .map_err(|e| anyhow::anyhow!("cannot start the web-UI login: {e}"))?;
                tracing::info!(callback = ui.callback_uri(), "web-UI login on");
                routes = routes.merge(lakests_authenticator::ui_routes(Arc::new(ui)));
            }
            let router = lakests_http::with_common_layers(routes);
            roles.push(Role {
                name: "authenticator",
                listener,
                router,
            });
            in_process = Some(service);
        }

        let mut sts_addr = None;
        if let Some(secret) = config
            .auth
            .encrypt
            .secret_key
            .as_ref()
            .filter(|_| config.sts_enabled())
        {
            let discovery = in_process.as_ref().and_then(|_| login_discovery(&config));
            let authenticator: Arc<dyn Authenticator> = match (
                &config.auth.authentication_api.endpoint,
                in_process,
            ) {
                (Some(endpoint), _) => Arc::new(
                    RemoteAuthenticator::new(
                        endpoint,
                        config.auth.authentication_api.request_timeout.get(),
                    )
                    .context("cannot build the authenticator client")?,
                ),
                (None, Some(service)) => service,
                (None, None) => anyhow::bail!(
                    "auth.authentication_api.endpoint is required unless authenticator.providers is set"
                ),
            };
            let service = StsService::new(
                store.clone(),
                authenticator,
                TokenIssuer::new(&secret.secret_string()),
                clock.clone(),
                sts_policy(&config),
            );
            let cache = &config.auth.cache;
            let service = if cache.enabled {
                service.with_user_cache_jitter(
                    i64::try_from(cache.ttl.get().as_secs()).unwrap_or(i64::MAX),
                    i64::try_from(cache.jitter.get().as_secs()).unwrap_or(0),
                    cache.size,
                )
            } else {
                service
            };
            let listener = bind(listeners.sts.take(), &config.listen_address, "sts").await?;
            sts_addr = Some(listener.local_addr()?);
            roles.push(Role {
                name: "sts",
                listener,
                router: crate::sts_routes::router(Arc::new(StsState {
                    service,
                    discovery,
                    in_flight: Arc::new(tokio::sync::Semaphore::new(
                        config.auth.sts.max_concurrent_logins,
                    )),
                    limiter: Arc::new(crate::rate_limit::RateLimiter::new(
                        config.auth.sts.rate_limit_per_second,
                        config.auth.sts.rate_limit_burst,
                    )),
                })),
            });
        }

        for (given, role) in [
            (listeners.sts.is_some(), "sts"),
            (listeners.authenticator.is_some(), "authenticator"),
            (listeners.idp.is_some(), "idp"),
            (listeners.authorization.is_some(), "authorization"),
        ] {
            if given {
                anyhow::bail!(
                    "a listener was given for the {role} role, which this configuration does not run on a listener of its own"
                );
            }
        }
        if shared_authz.is_some() {
            anyhow::bail!(
                "authorization.listen_address is required unless the authenticator role runs in this process"
            );
        }
        if roles.is_empty() {
            anyhow::bail!("no role is configured to run");
        }
        let limits = serve_limits(&config.http);
        check_fd_limit(&limits, roles.len());
        Ok(Self {
            roles,
            store,
            sts_addr,
            authenticator_addr,
            idp_addr,
            limits,
            clock,
            audit: config.auth.audit.clone(),
            authorization_addr,
        })
    }

    /// Address of the STS server role, when it runs.
    pub fn sts_addr(&self) -> Option<SocketAddr> {
        self.sts_addr
    }

    /// Address of the authenticator role, when it runs.
    pub fn authenticator_addr(&self) -> Option<SocketAddr> {
        self.authenticator_addr
    }

    /// Address of the development IdP role, when it runs.
    pub fn idp_addr(&self) -> Option<SocketAddr> {
        self.idp_addr
    }

    /// Address of the authorization API (lakeFS's `auth.api.endpoint` is
    /// `http://<this>/api/v1`), when it runs: its own, or the authenticator's when shared.
    pub fn authorization_addr(&self) -> Option<SocketAddr> {
        self.authorization_addr
    }

    /// The store every role shares.
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Serves every role until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let limits = self.limits;
        for role in self.roles {
            let mut rx = rx.clone();
            let addr = role.listener.local_addr()?;
            tracing::info!(role = role.name, %addr, "listening");
            tasks.spawn(async move {
                let stop = async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                };
                lakests_http::serve_with_limits(role.listener, role.router, limits, stop)
                    .await
                    .with_context(|| format!("the {} role failed", role.name))
            });
        }
        let purger = tokio::spawn(purge_periodically(
            self.store.clone(),
            self.clock.clone(),
            self.audit.clone(),
        ));
        // Either the shutdown signal, or a role that stopped on its own (an error), ends all.
        let first = tokio::select! {
            () = shutdown => None,
            done = tasks.join_next() => done,
        };
        let _ = tx.send(true);
        let mut result = Ok(());
        if let Some(done) = first {
            result = done.context("a role panicked")?;
        }
        while let Some(done) = tasks.join_next().await {
            done.context("a role panicked")??;
        }
        purger.abort();
        tracing::info!("stopped");
        result
    }
}

/// Audit retention and grant expiry: removes audit records older than `auth.audit.retention`
/// and expired single-use grants, at start and every `auth.audit.purge_interval`. Several
/// replicas doing the same is harmless.
async fn purge_periodically(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: lakests_config::Audit,
) {
    let retention = i64::try_from(audit.retention.get().as_secs()).unwrap_or(i64::MAX);
    let mut tick = tokio::time::interval(audit.purge_interval.get());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = clock.now();
        match store
            .purge_audit_before(now.saturating_sub(retention))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed audit records past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not purge old audit records"),
        }
        if let Err(e) = store.purge_expired_grants(now).await {
            tracing::warn!(error = %e, "could not purge expired grants");
        }
    }
}

fn serve_limits(http: &lakests_config::HttpServer) -> lakests_http::ServeLimits {
    lakests_http::ServeLimits {
        header_read_timeout: http.header_read_timeout.get(),
        idle_timeout: http.idle_timeout.get(),
        request_timeout: http.request_timeout.get(),
        max_connections: http.max_connections,
        max_connections_per_client: http.max_connections_per_client,
    }
}

/// File descriptors kept for everything but client connections: the database pool, outbound
/// calls, logs, the listeners themselves.
const RESERVED_FDS: u64 = 256;

/// Raises the open-file limit to its hard limit and warns when the connection caps of every
/// listener could still exhaust it (then the caps, not the limit, should be lowered).
fn check_fd_limit(limits: &lakests_http::ServeLimits, listeners: usize) {
    let Some(limit) = lakests_http::raise_fd_limit() else {
        return;
    };
    let wanted = (limits.max_connections as u64)
        .saturating_mul(listeners as u64)
        .saturating_add(RESERVED_FDS);
    if wanted > limit {
        tracing::warn!(
            open_file_limit = limit,
            wanted,
            "the open-file limit is below {listeners} x http.max_connections plus a reserve; \
             lower http.max_connections or raise the hard limit (ulimit -Hn)"
        );
    } else {
        tracing::debug!(open_file_limit = limit, "open-file limit");
    }
}

/// Listeners bound before [`Application::build_with_listeners`]; a role without one binds its
/// configured address.
#[derive(Debug, Default)]
pub struct Listeners {
    /// The STS server role.
    pub sts: Option<std::net::TcpListener>,
    /// The authenticator role.
    pub authenticator: Option<std::net::TcpListener>,
    /// The development IdP role.
    pub idp: Option<std::net::TcpListener>,
    /// The authorization API, when it listens on its own address.
    pub authorization: Option<std::net::TcpListener>,
}

async fn bind(
    given: Option<std::net::TcpListener>,
    addr: &str,
    role: &str,
) -> anyhow::Result<TcpListener> {
    if let Some(listener) = given {
        listener.set_nonblocking(true)?;
        return TcpListener::from_std(listener)
            .with_context(|| format!("cannot use the listener given for the {role} role"));
    }
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {role} role"))
}

fn sts_policy(config: &Config) -> StsPolicy {
    let cav = &config.auth.cookie_auth_verification;
    StsPolicy {
        default_ttl_seconds: config.auth.sts.default_ttl_seconds,
        max_ttl_seconds: config.auth.sts.max_ttl_seconds,
        required_claims: cav.validate_id_token_claims.clone(),
        provisioning: Some(Provisioning {
            username_claim: config.auth.sts.username_claim_name.clone(),
            initial_groups_claim: cav.initial_groups_claim_name.clone(),
            default_initial_groups: cav.default_initial_groups.clone(),
        })
        .filter(|_| config.auth.sts.auto_create_users),
        friendly_name_claim: cav.friendly_name_claim_name.clone(),
        persist_friendly_name: cav.persist_friendly_name,
        external_id_claim: cav.external_user_id_claim_name.clone(),
    }
}

/// The login discovery document for the provider `auth.sts.login_provider` names (default: the
/// first one).
fn login_discovery(config: &Config) -> Option<lakests_api::LoginDiscovery> {
    let providers = &config.authenticator.providers;
    let provider = match &config.auth.sts.login_provider {
        Some(name) => providers.iter().find(|p| &p.name == name),
        None => providers.first(),
    }?;
    Some(lakests_api::LoginDiscovery {
        issuer: provider.issuer.clone(),
        client_id: provider.client_id.clone(),
        scopes: provider.scopes.clone(),
        pkce: match provider.pkce {
            lakests_config::PkceMode::State => "state".into(),
            lakests_config::PkceMode::Session => "session".into(),
        },
        redirect_uris: provider.redirect_uris.clone(),
        allow_loopback_any_port: provider.allow_loopback_any_port,
        default_ttl_seconds: config.auth.sts.default_ttl_seconds,
        max_ttl_seconds: config.auth.sts.max_ttl_seconds,
    })
}
