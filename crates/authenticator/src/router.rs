//! The authenticator role's HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lakests_api::{AuthenticatorStsRequest, AuthorizeRequest, LoginDiscovery, OidcTokenData};
use lakests_core::{Authenticator, RequestContext};
use lakests_http::{ApiError, AppJson, RequestId};

use crate::AuthenticatorService;

/// The role's HTTP API: `POST /api/v1/sts/login`, `POST /api/v1/sts/authorize`,
/// `GET /api/v1/healthcheck` (204), `GET /metrics` (Prometheus text counters of logins by
/// outcome), wrapped with [`lakests_http::with_common_layers`].
pub fn router(service: Arc<AuthenticatorService>) -> Router {
    router_with_discovery(service, None)
}

/// [`router`], plus `GET /.well-known/lakests-login` when `discovery` is given: the document
/// `lakests login --authenticator URL` reads when the lakeFS server itself (which does not
/// serve it) is the endpoint. Session-mode logins then start at this role's
/// `POST /api/v1/sts/authorize`.
pub fn router_with_discovery(
    service: Arc<AuthenticatorService>,
    discovery: Option<LoginDiscovery>,
) -> Router {
    lakests_http::with_common_layers(routes(service, discovery))
}

/// The routes of [`router_with_discovery`] without the common layers, for a listener shared
/// with another role (the authorization API).
pub fn routes(service: Arc<AuthenticatorService>, discovery: Option<LoginDiscovery>) -> Router {
    let mut api = Router::new()
        .route("/api/v1/sts/login", post(login))
        .route("/api/v1/sts/authorize", post(authorize))
        .route("/api/v1/sts/authorize/exchange", post(exchange))
        .route("/api/v1/healthcheck", get(healthcheck))
        .route("/metrics", get(metrics));
    if let Some(d) = discovery {
        api = api.route(
            "/.well-known/lakests-login",
            get(move || {
                let d = d.clone();
                async move { axum::Json(d) }
            }),
        );
    }
    api.with_state(service)
}

/// The client's address when the server was started with connect info.
pub(crate) struct ClientAddr(pub(crate) Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.to_string()),
        ))
    }
}

async fn login(
    State(service): State<Arc<AuthenticatorService>>,
    RequestId(request_id): RequestId,
    ClientAddr(client_addr): ClientAddr,
    AppJson(request): AppJson<AuthenticatorStsRequest>,
) -> Result<axum::Json<OidcTokenData>, ApiError> {
    let ctx = RequestContext {
        request_id,
        client_addr,
    };
    service
        .sts_login(&request, &ctx)
        .await
        .map(|claims| axum::Json(OidcTokenData { claims }))
        .map_err(ApiError::from)
}

async fn authorize(
    State(service): State<Arc<AuthenticatorService>>,
    RequestId(request_id): RequestId,
    ClientAddr(client_addr): ClientAddr,
    AppJson(request): AppJson<AuthorizeRequest>,
) -> Result<axum::Json<lakests_api::AuthorizeResponse>, ApiError> {
    let ctx = RequestContext {
        request_id,
        client_addr,
    };
    service
        .authorize(&request, &ctx)
        .await
        .map(axum::Json)
        .map_err(ApiError::from)
}

async fn exchange(
    State(service): State<Arc<AuthenticatorService>>,
    RequestId(request_id): RequestId,
    ClientAddr(client_addr): ClientAddr,
    AppJson(request): AppJson<lakests_api::AuthorizeExchangeRequest>,
) -> Result<axum::Json<lakests_api::AuthorizeExchangeResponse>, ApiError> {
    let ctx = RequestContext {
        request_id,
        client_addr,
    };
    service
        .exchange(&request, &ctx)
        .await
        .map(axum::Json)
        .map_err(ApiError::from)
}

async fn healthcheck() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn metrics(State(service): State<Arc<AuthenticatorService>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        service.metrics_text(),
    )
        .into_response()
}
