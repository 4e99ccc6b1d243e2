//! The baseline of the benchmark suite: a bare axum endpoint built with the same profile as
//! lakests, and one that verifies an HS256 JWT per request. Usage: `bare-axum ADDR SECRET`.

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let secret = args.next().unwrap_or_else(|| "bench-secret".into());
    let key = DecodingKey::from_secret(secret.as_bytes());
    let app = Router::new()
        .route(
            "/bare",
            get(|| async {
                axum::Json(serde_json::json!({"user": {"id": "alice", "creation_date": 0}}))
            }),
        )
        .route(
            "/api/v1/healthcheck",
            get(|| async { StatusCode::NO_CONTENT }),
        )
        .route(
            "/jwt",
            get(move |headers: HeaderMap| {
                let key = key.clone();
                async move {
                    let token = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .ok_or(StatusCode::UNAUTHORIZED)?;
                    let mut v = Validation::new(Algorithm::HS256);
                    v.set_audience(&["login"]);
                    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
                        .map_err(|_| StatusCode::UNAUTHORIZED)?;
                    Ok::<_, StatusCode>(axum::Json(
                        serde_json::json!({"user": {"id": "alice", "creation_date": 0}}),
                    ))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
