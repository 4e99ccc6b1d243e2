//! The HTTP API lakeFS's `APIAuthService` calls (AUTHZ.md §4), under `/api/v1`. Every route
//! but `/healthcheck` requires lakeFS's bearer token. Path segments arrive percent-encoded
//! twice and are decoded twice; query values once. Errors are `{"message"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, RawPathParams, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use lakests_api::authz::{
    ClaimTokenId, FriendlyNameUpdate, GroupCreation, Policy, UserCreation, VersionConfig,
};
use lakests_core::Clock;
use lakests_http::{ApiError, AppJson};

use crate::caller::CallerAuth;
use crate::service::{AuthzError, AuthzService, PageQuery};

/// Longest query string accepted, in bytes.
pub const MAX_QUERY_LEN: usize = 8 * 1024;

/// What the handlers share.
pub struct AuthzState {
    /// The use cases.
    pub service: AuthzService,
    /// lakeFS's authentication.
    pub caller: CallerAuth,
    /// The clock for token expiry.
    pub clock: Arc<dyn Clock>,
}

type S = State<Arc<AuthzState>>;
type ApiResult = Result<Response, ApiError>;

/// The routes without the common layers, so they can share the authenticator's listener.
/// `healthcheck`: also answer `GET /api/v1/healthcheck` (the authenticator has its own).
pub fn routes(state: Arc<AuthzState>, healthcheck: bool) -> Router {
    let protected = Router::new()
        .route("/api/v1/config/version", get(version))
        .route("/api/v1/auth/users", post(create_user).get(list_users))
        .route(
            "/api/v1/auth/users/{user}",
            get(get_user).delete(delete_user),
        )
        .route(
            "/api/v1/auth/users/{user}/friendly_name",
            put(set_friendly_name),
        )
        .route("/api/v1/auth/users/{user}/password", put(set_password))
        .route("/api/v1/auth/users/{user}/groups", get(list_user_groups))
        .route(
            "/api/v1/auth/users/{user}/policies",
            get(list_user_policies),
        )
        .route(
            "/api/v1/auth/users/{user}/policies/{policy}",
            put(attach_user_policy).delete(detach_user_policy),
        )
        .route(
            "/api/v1/auth/users/{user}/credentials",
            post(create_credentials).get(list_credentials),
        )
        .route(
            "/api/v1/auth/users/{user}/credentials/{key}",
            get(get_user_credentials).delete(delete_credentials),
        )
        .route("/api/v1/auth/credentials/{key}", get(get_credentials))
        .route(
            "/api/v1/auth/users/{user}/external/principals",
            post(create_principal).delete(delete_principal),
        )
        .route(
            "/api/v1/auth/users/{user}/external/principals/ls",
            get(list_principals),
        )
        .route("/api/v1/auth/external/principals", get(get_principal))
        .route("/api/v1/auth/groups", post(create_group).get(list_groups))
        .route(
            "/api/v1/auth/groups/{group}",
            get(get_group).delete(delete_group),
        )
        .route("/api/v1/auth/groups/{group}/members", get(list_members))
        .route(
            "/api/v1/auth/groups/{group}/members/{user}",
            put(add_member).delete(remove_member),
        )
        .route(
            "/api/v1/auth/groups/{group}/policies",
            get(list_group_policies),
        )
        .route(
            "/api/v1/auth/groups/{group}/policies/{policy}",
            put(attach_group_policy).delete(detach_group_policy),
        )
        .route(
            "/api/v1/auth/policies",
            post(create_policy).get(list_policies),
        )
        .route(
            "/api/v1/auth/policies/{policy}",
            get(get_policy).put(update_policy).delete(delete_policy),
        )
        .route("/api/v1/auth/tokenid/claim", post(claim_token_id))
        .route_layer(authenticate(state.clone()))
        .with_state(state);
    if healthcheck {
        protected.route(
            "/api/v1/healthcheck",
            get(|| async { StatusCode::NO_CONTENT }),
        )
    } else {
        protected
    }
}

/// The role on its own listener: [`routes`] with the common layers.
pub fn router(state: Arc<AuthzState>) -> Router {
    lakests_http::with_common_layers(routes(state, true))
}

/// lakeFS's service token on every call, or 401 (a gate, not `from_fn`: lakeFS makes these
/// calls on its own request path, bench/NOTES.md).
fn authenticate(
    state: Arc<AuthzState>,
) -> lakests_http::GateLayer<impl Fn(&Request) -> Option<Response> + Clone + Send + Sync + 'static>
{
    lakests_http::GateLayer::new(move |req: &Request| {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let e = state.caller.check(header, state.clock.now()).err()?;
        tracing::info!(reason = %e, "authorization API call refused");
        Some(ApiError::unauthorized(e.to_string()).into_response())
    })
}

fn api_error(e: AuthzError) -> ApiError {
    match e {
        AuthzError::Invalid(m) => ApiError::bad_request(m),
        AuthzError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        AuthzError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
        AuthzError::Internal(m) => {
            tracing::error!(error = %m, "authorization API failed");
            ApiError::internal()
        }
    }
}

/// Path parameters, decoded a second time (lakeFS's client escapes them twice).
struct Ids(Vec<String>);

impl<St: Send + Sync> FromRequestParts<St> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::bad_request("a path parameter is not valid UTF-8"))?;
        let mut ids = Vec::new();
        for (_, value) in &raw {
            let decoded = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| ApiError::bad_request("a path parameter is not valid UTF-8"))?;
            if decoded.is_empty() {
                return Err(ApiError::bad_request("a path parameter is empty"));
            }
            ids.push(decoded.into_owned());
        }
        Ok(Ids(ids))
    }
}

impl Ids {
    fn one(&self) -> &str {
        self.0.first().map(String::as_str).unwrap_or_default()
    }

    fn two(&self) -> (&str, &str) {
        (
            self.0.first().map(String::as_str).unwrap_or_default(),
            self.0.get(1).map(String::as_str).unwrap_or_default(),
        )
    }
}

/// The query string, form-decoded once; a key given twice is a 400.
struct Query(HashMap<String, String>);

impl<St: Send + Sync> FromRequestParts<St> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let RawQuery(raw) = RawQuery::from_request_parts(parts, state)
            .await
            .unwrap_or(RawQuery(None));
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_QUERY_LEN {
            return Err(ApiError::bad_request(format!(
                "the query string is longer than {MAX_QUERY_LEN} bytes"
            )));
        }
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
            if map.insert(k.clone().into_owned(), v.into_owned()).is_some() {
                return Err(ApiError::bad_request(format!(
                    "query parameter {k} is given more than once"
                )));
            }
        }
        Ok(Query(map))
    }
}

impl Query {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn page(&self) -> PageQuery {
        PageQuery {
            after: self.get("after").unwrap_or_default().to_owned(),
            amount: self.get("amount").map(str::to_owned),
            prefix: self.get("prefix").unwrap_or_default().to_owned(),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::bad_request(format!(
                "{key} must be true or false"
            ))),
        }
    }

    fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("query parameter {key} is required")))
    }
}

fn ok<T: serde::Serialize>(r: Result<T, AuthzError>) -> ApiResult {
    r.map(|v| axum::Json(v).into_response()).map_err(api_error)
}

fn created<T: serde::Serialize>(r: Result<T, AuthzError>) -> ApiResult {
    r.map(|v| (StatusCode::CREATED, axum::Json(v)).into_response())
        .map_err(api_error)
}

/// 201 without a body (and without a JSON content type, which lakeFS would try to parse).
fn created_empty(r: Result<(), AuthzError>) -> ApiResult {
    r.map(|()| StatusCode::CREATED.into_response())
        .map_err(api_error)
}

fn no_content(r: Result<(), AuthzError>) -> ApiResult {
    r.map(|()| StatusCode::NO_CONTENT.into_response())
        .map_err(api_error)
}

async fn version(State(_): S) -> axum::Json<VersionConfig> {
    axum::Json(VersionConfig {
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn create_user(State(s): S, AppJson(body): AppJson<UserCreation>) -> ApiResult {
    created(s.service.create_user(body).await)
}

async fn list_users(State(s): S, q: Query) -> ApiResult {
    ok(s.service
        .list_users(&q.page(), q.get("external_id"), q.get("email"), q.get("id"))
        .await)
}

async fn get_user(State(s): S, ids: Ids) -> ApiResult {
    ok(s.service.get_user(ids.one()).await)
}

async fn delete_user(State(s): S, ids: Ids) -> ApiResult {
    no_content(s.service.delete_user(ids.one()).await)
}

async fn set_friendly_name(
    State(s): S,
    ids: Ids,
    AppJson(body): AppJson<FriendlyNameUpdate>,
) -> ApiResult {
    no_content(
        s.service
            .set_friendly_name(ids.one(), &body.friendly_name)
            .await,
    )
}

async fn set_password(State(_): S, _ids: Ids) -> ApiResult {
    Err(ApiError::bad_request(
        "passwords are not supported: lakests keeps no passwords (log in through OpenID Connect or with access keys)",
    ))
}

async fn list_user_groups(State(s): S, ids: Ids, q: Query) -> ApiResult {
    ok(s.service.list_user_groups(ids.one(), &q.page()).await)
}

async fn list_user_policies(State(s): S, ids: Ids, q: Query) -> ApiResult {
    let effective = q.flag("effective")?;
    if effective {
        // lakeFS's call on every request it authorizes: the body comes ready-made.
        return s
            .service
            .effective_policies_body(ids.one(), &q.page())
            .await
            .map(|body| {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    body,
                )
                    .into_response()
            })
            .map_err(api_error);
    }
    ok(s.service
        .list_user_policies(ids.one(), &q.page(), false)
        .await)
}

async fn attach_user_policy(State(s): S, ids: Ids) -> ApiResult {
    let (user, policy) = ids.two();
    created_empty(s.service.attach_user_policy(user, policy).await)
}

async fn detach_user_policy(State(s): S, ids: Ids) -> ApiResult {
    let (user, policy) = ids.two();
    no_content(s.service.detach_user_policy(user, policy).await)
}

async fn create_credentials(State(s): S, ids: Ids, q: Query) -> ApiResult {
    created(
        s.service
            .create_credentials(ids.one(), q.get("access_key"), q.get("secret_key"))
            .await,
    )
}

async fn list_credentials(State(s): S, ids: Ids, q: Query) -> ApiResult {
    ok(s.service.list_credentials(ids.one(), &q.page()).await)
}

async fn get_user_credentials(State(s): S, ids: Ids) -> ApiResult {
    let (user, key) = ids.two();
    ok(s.service.get_user_credentials(user, key).await)
}

async fn delete_credentials(State(s): S, ids: Ids) -> ApiResult {
    let (user, key) = ids.two();
    no_content(s.service.delete_credentials(user, key).await)
}

async fn get_credentials(State(s): S, ids: Ids) -> ApiResult {
    ok(s.service.get_credentials(ids.one()).await)
}

async fn create_principal(State(s): S, ids: Ids, q: Query) -> ApiResult {
    let id = q.required("principalId")?;
    created_empty(s.service.create_principal(ids.one(), id).await)
}

async fn delete_principal(State(s): S, ids: Ids, q: Query) -> ApiResult {
    let id = q.required("principalId")?;
    no_content(s.service.delete_principal(ids.one(), id).await)
}

async fn list_principals(State(s): S, ids: Ids, q: Query) -> ApiResult {
    ok(s.service.list_principals(ids.one(), &q.page()).await)
}

async fn get_principal(State(s): S, q: Query) -> ApiResult {
    let id = q.required("principalId")?;
    ok(s.service.get_principal(id).await)
}

async fn create_group(State(s): S, AppJson(body): AppJson<GroupCreation>) -> ApiResult {
    created(s.service.create_group(body).await)
}

async fn list_groups(State(s): S, q: Query) -> ApiResult {
    ok(s.service.list_groups(&q.page()).await)
}

async fn get_group(State(s): S, ids: Ids) -> ApiResult {
    ok(s.service.get_group(ids.one()).await)
}

async fn delete_group(State(s): S, ids: Ids) -> ApiResult {
    no_content(s.service.delete_group(ids.one()).await)
}

async fn list_members(State(s): S, ids: Ids, q: Query) -> ApiResult {
    ok(s.service.list_members(ids.one(), &q.page()).await)
}

async fn add_member(State(s): S, ids: Ids) -> ApiResult {
    let (group, user) = ids.two();
    created_empty(s.service.add_member(group, user).await)
}

async fn remove_member(State(s): S, ids: Ids) -> ApiResult {
    let (group, user) = ids.two();
    no_content(s.service.remove_member(group, user).await)
}

async fn list_group_policies(State(s): S, ids: Ids, q: Query) -> ApiResult {
    ok(s.service.list_group_policies(ids.one(), &q.page()).await)
}

async fn attach_group_policy(State(s): S, ids: Ids) -> ApiResult {
    let (group, policy) = ids.two();
    created_empty(s.service.attach_group_policy(group, policy).await)
}

async fn detach_group_policy(State(s): S, ids: Ids) -> ApiResult {
    let (group, policy) = ids.two();
    no_content(s.service.detach_group_policy(group, policy).await)
}

async fn create_policy(State(s): S, AppJson(body): AppJson<Policy>) -> ApiResult {
    created(s.service.create_policy(body).await)
}

async fn list_policies(State(s): S, q: Query) -> ApiResult {
    ok(s.service.list_policies(&q.page()).await)
}

async fn get_policy(State(s): S, ids: Ids) -> ApiResult {
    ok(s.service.get_policy(ids.one()).await)
}

async fn update_policy(State(s): S, ids: Ids, AppJson(body): AppJson<Policy>) -> ApiResult {
    ok(s.service.update_policy(ids.one(), body).await)
}

async fn delete_policy(State(s): S, ids: Ids) -> ApiResult {
    no_content(s.service.delete_policy(ids.one()).await)
}

async fn claim_token_id(State(s): S, AppJson(body): AppJson<ClaimTokenId>) -> ApiResult {
    created_empty(s.service.claim_token_id(body).await)
}
