//! Outbound HTTP to identity providers: no redirects, no proxy, one overall timeout per call
//! (connection, request and the whole body), and a cap on the body size.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;

use crate::OidcError;

/// Why an outbound call produced no usable answer. Messages never carry a URL's secrets,
/// a code or a token: only the endpoint's role and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    /// The overall timeout passed.
    #[error("did not answer in time")]
    Timeout,
    /// No connection could be made.
    #[error("is unreachable")]
    Connect,
    /// The body is larger than the limit.
    #[error("answered more than {0} bytes")]
    TooLarge(usize),
    /// Another transport failure (TLS, a reset connection, a malformed response).
    #[error("failed: {0}")]
    Transport(String),
}

/// A response read in full.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type`, lower-cased, without parameters.
    pub content_type: Option<String>,
    /// The body, at most the configured number of bytes.
    pub body: Vec<u8>,
}

/// The HTTP client every call to an identity provider goes through.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    client: reqwest::Client,
    timeout: Duration,
    max_bytes: usize,
}

impl Outbound {
    /// Builds the client. Reads `ca_file` (an extra PEM bundle trusted beside the system roots)
    /// when given; performs no network I/O.
    pub fn new(
        timeout: Duration,
        max_bytes: u64,
        ca_file: Option<&Path>,
    ) -> Result<Self, OidcError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("lakests/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| OidcError::CaFile {
                path: path.to_path_buf(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| OidcError::CaBundle {
                    path: path.to_path_buf(),
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(OidcError::Client)?;
        Ok(Self {
            client,
            timeout,
            max_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        })
    }

    /// The underlying client, to build requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `request` and reads the whole body, all within the overall timeout.
    pub async fn execute(&self, request: reqwest::RequestBuilder) -> Result<Fetched, FetchError> {
        let max = self.max_bytes;
        let call = async move {
            let mut resp = request.send().await.map_err(classify)?;
            if resp.content_length().is_some_and(|n| n > max as u64) {
                return Err(FetchError::TooLarge(max));
            }
            let status = resp.status();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                });
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(classify)? {
                if body.len() + chunk.len() > max {
                    return Err(FetchError::TooLarge(max));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(Fetched {
                status,
                content_type,
                body,
            })
        };
        // reqwest's own timeout covers the body too; this one makes the bound independent of
        // how the body is read.
        match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout),
        }
    }
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        FetchError::Connect
    } else {
        // Without the URL: error texts are logged, and a URL could one day carry a parameter.
        FetchError::Transport(e.without_url().to_string())
    }
}
