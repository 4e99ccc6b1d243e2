//! The STS server role: the lakeFS API paths a lakeFS client touches during and after STS
//! login.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lakests_api::{
    AuthorizeRequest, AuthorizeResponse, Config as ApiConfig, CurrentUser, LoginDiscovery,
    StorageConfig, StsAuthRequest, User, VersionConfig,
};
use lakests_core::RequestContext;
use lakests_core::sts::{BearerError, StsError, StsService};
use lakests_http::{ApiError, AppJson, RequestId};

use lakests_api::GRANTED_TTL_HEADER;

/// Longest bearer token looked at; longer ones are refused without parsing.
const MAX_BEARER_LEN: usize = 8 * 1024;

/// What the STS routes share.
pub(crate) struct StsState {
    pub service: StsService,
    /// `GET /.well-known/lakests-login`, when the authenticator runs in this process.
    pub discovery: Option<LoginDiscovery>,
    /// Bounds logins in flight (`auth.sts.max_concurrent_logins`); beyond it, 429.
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Per-client rate limits of `sts/login` and `sts/authorize`.
    pub limiter: Arc<crate::rate_limit::RateLimiter>,
}

/// A permit for one login, or [`StsError::Busy`] (429) when `auth.sts.max_concurrent_logins`
/// are in flight.
fn admit(state: &StsState) -> Result<tokio::sync::OwnedSemaphorePermit, StsError> {
    state.in_flight.clone().try_acquire_owned().map_err(|_| {
        tracing::warn!("login refused: too many logins in flight");
        StsError::Busy
    })
}

pub(crate) fn router(state: Arc<StsState>) -> Router {
    let limited = Router::new()
        .route("/api/v1/sts/login", post(sts_login))
        .route("/api/v1/sts/authorize", post(sts_authorize))
        .route(
            "/api/v1/sts/authorize/exchange",
            post(sts_authorize_exchange),
        )
        .route_layer(crate::rate_limit::layer(state.limiter.clone()));
    let api = Router::new()
        .merge(limited)
        .route("/metrics", get(metrics))
        .route("/.well-known/lakests-login", get(login_discovery))
        .route("/api/v1/user", get(current_user))
        .route("/api/v1/healthcheck", get(healthcheck))
        .route("/api/v1/config", get(config))
        .with_state(state);
    lakests_http::with_common_layers(api)
}

async fn login_discovery(
    State(state): State<Arc<StsState>>,
) -> Result<Json<LoginDiscovery>, ApiError> {
    state.discovery.clone().map(Json).ok_or_else(|| {
        StsError::NotOffered(
            "this server publishes no login discovery document (its authenticator is remote); \
             pass --issuer and --client-id to lakests login"
                .into(),
        )
        .into()
    })
}

async fn sts_authorize(
    State(state): State<Arc<StsState>>,
    RequestId(request_id): RequestId,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(req): AppJson<AuthorizeRequest>,
) -> Result<Json<AuthorizeResponse>, ApiError> {
    let _permit = admit(&state)?;
    let ctx = request_context(request_id, peer);
    Ok(Json(state.service.authorize(&req, &ctx).await?))
}

async fn sts_authorize_exchange(
    State(state): State<Arc<StsState>>,
    RequestId(request_id): RequestId,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(req): AppJson<lakests_api::AuthorizeExchangeRequest>,
) -> Result<Json<lakests_api::AuthorizeExchangeResponse>, ApiError> {
    let _permit = admit(&state)?;
    let ctx = request_context(request_id, peer);
    Ok(Json(state.service.exchange(&req, &ctx).await?))
}

fn request_context(request_id: String, peer: SocketAddr) -> RequestContext {
    RequestContext {
        request_id,
        client_addr: Some(peer.ip().to_string()),
    }
}

async fn sts_login(
    State(state): State<Arc<StsState>>,
    RequestId(request_id): RequestId,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    AppJson(req): AppJson<StsAuthRequest>,
) -> Result<Response, ApiError> {
    let _permit = admit(&state)?;
    let ctx = request_context(request_id, peer);
    let grant = state.service.login(&req, &ctx).await?;
    let mut resp = Json(grant.token).into_response();
    resp.headers_mut().insert(
        GRANTED_TTL_HEADER,
        HeaderValue::from(grant.granted_ttl_seconds),
    );
    Ok(resp)
}

/// The user of the request's bearer token, under lakeFS's token rules.
/// The request's `Authorization` header, taken alone: axum's `HeaderMap` extractor would copy
/// every header of every authenticated request.
struct Authorization(Option<HeaderValue>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Authorization {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::AUTHORIZATION).cloned()))
    }
}

async fn authenticated(
    state: &StsState,
    authorization: &Authorization,
) -> Result<lakests_core::UserRecord, ApiError> {
    let token = bearer(authorization.0.as_ref())?;
    state
        .service
        .authenticate_bearer(token)
        .await
        .map_err(|e| match e {
            BearerError::Unauthorized(m) => ApiError::unauthorized(m),
            BearerError::Store(e) => {
                tracing::error!(error = %e, "storage failed while authenticating a token");
                ApiError::internal()
            }
        })
}

async fn current_user(
    State(state): State<Arc<StsState>>,
    authorization: Authorization,
) -> Result<Json<CurrentUser>, ApiError> {
    let user = authenticated(&state, &authorization).await?;
    // lakeFS fills friendly_name with the username when the user has none.
    let friendly_name = Some(
        user.friendly_name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| user.username.clone()),
    );
    Ok(Json(CurrentUser {
        user: User {
            id: user.username,
            creation_date: user.created_at,
            friendly_name,
            email: user.email,
        },
    }))
}

fn bearer(value: Option<&HeaderValue>) -> Result<&str, ApiError> {
    let value =
        value.ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid Authorization header"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("invalid Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized("only Bearer tokens are accepted"));
    }
    let token = token.trim();
    if token.is_empty() || token.len() > MAX_BEARER_LEN {
        return Err(ApiError::unauthorized("invalid token"));
    }
    Ok(token)
}

/// Counters in the Prometheus text format: requests refused as malformed (400, counted
/// instead of stored in the audit log) and requests refused by the per-client rate limit.
async fn metrics(State(state): State<Arc<StsState>>) -> Response {
    let body = format!(
        "# HELP lakests_sts_malformed_requests_total STS login requests refused as malformed (400); not kept in the audit log.\n\
         # TYPE lakests_sts_malformed_requests_total counter\n\
         lakests_sts_malformed_requests_total {}\n\
         # HELP lakests_sts_rate_limited_total sts/login and sts/authorize requests answered 429 by the per-client rate limit.\n\
         # TYPE lakests_sts_rate_limited_total counter\n\
         lakests_sts_rate_limited_total {}\n\
         # HELP lakests_http_connections_shed_total Connections answered 503 and closed over http.max_connections or http.max_connections_per_client, by every role of this process.\n\
         # TYPE lakests_http_connections_shed_total counter\n\
         lakests_http_connections_shed_total {}\n\
         # HELP lakests_bearer_cache_hits_total Bearer tokens answered from the cache (auth.cache), which every change to the store invalidates.\n\
         # TYPE lakests_bearer_cache_hits_total counter\n\
         lakests_bearer_cache_hits_total {}\n",
        state.service.malformed_requests(),
        state
            .limiter
            .limited_total
            .load(std::sync::atomic::Ordering::Relaxed),
        lakests_http::connections_shed_total(),
        state.service.bearer_cache_hits(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

async fn healthcheck() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// `GET /api/v1/config`: authenticated, as in lakeFS. The body has what the `lakefs` SDK's
/// `Client.version` and `Client.storage_config` read, and says that this is lakests, which
/// holds no data.
async fn config(
    State(state): State<Arc<StsState>>,
    authorization: Authorization,
) -> Result<Json<ApiConfig>, ApiError> {
    authenticated(&state, &authorization).await?;
    Ok(Json(ApiConfig {
        version_config: VersionConfig {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            version_context: Some("lakests".to_owned()),
        },
        storage_config: Some(StorageConfig {
            blockstore_type: "none".to_owned(),
            blockstore_namespace_example: String::new(),
            // Matches nothing: there is no storage namespace here.
            blockstore_namespace_validity_regex: "^$a".to_owned(),
            pre_sign_support: false,
            pre_sign_support_ui: false,
            import_support: false,
            import_validity_regex: "^$a".to_owned(),
            blockstore_description: Some(
                "lakests STS server: it issues lakeFS tokens and holds no data; send data calls \
                 to lakeFS"
                    .to_owned(),
            ),
        }),
    }))
}
