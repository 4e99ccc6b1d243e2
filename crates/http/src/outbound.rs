//! The one outbound HTTP client of lakests: every call to an identity provider, to a remote
//! authenticator and from `lakests login` to a server goes through [`Outbound`]. It follows no
//! redirect, uses no proxy unless asked to, bounds each call (connection, request and the whole
//! body) by one overall timeout, caps the body it reads, and can trust an extra CA bundle.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use reqwest::{Method, RequestBuilder, StatusCode, Url, header::HeaderMap};

/// How an [`Outbound`] client behaves.
#[derive(Debug, Clone)]
pub struct OutboundOptions {
    /// The overall bound of one call: connection, request and the whole body.
    pub timeout: Duration,
    /// The bound of establishing a connection (at most `timeout`).
    pub connect_timeout: Duration,
    /// Largest body read, in bytes.
    pub max_bytes: usize,
    /// An extra PEM bundle trusted beside the system roots.
    pub ca_file: Option<PathBuf>,
    /// Whether the `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` environment applies. Servers
    /// leave it off (a proxy is configured, never inherited); the login CLI turns it on, as
    /// every command-line HTTP client does.
    pub env_proxy: bool,
}

impl OutboundOptions {
    /// No proxy, no extra CA, the connection bounded by `timeout` too.
    pub fn new(timeout: Duration, max_bytes: usize) -> Self {
        Self {
            timeout,
            connect_timeout: timeout,
            max_bytes,
            ca_file: None,
            env_proxy: false,
        }
    }
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OutboundBuildError {
    /// The CA file cannot be read.
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate.
    #[error("the CA file {path} holds no PEM certificate")]
    CaBundle {
        /// The file.
        path: PathBuf,
    },
    /// The TLS stack refused the settings.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Why a call produced no usable answer. Messages never carry a URL (a URL could carry a
/// parameter), a code or a token: only what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The call's time bound passed.
    #[error("did not answer in time")]
    Timeout,
    /// No connection could be made; the innermost cause, e.g. "Connection refused".
    #[error("is unreachable")]
    Connect(String),
    /// The body is larger than the limit.
    #[error("answered more than {0} bytes")]
    TooLarge(usize),
    /// Another transport failure (TLS, a reset connection, a malformed response).
    #[error("failed: {0}")]
    Transport(String),
}

impl FetchError {
    /// A readable cause for a person (the CLI): the innermost error for connection and
    /// transport failures.
    pub fn cause(&self) -> String {
        match self {
            FetchError::Timeout => "no answer in time".to_owned(),
            FetchError::Connect(c) | FetchError::Transport(c) => c.clone(),
            FetchError::TooLarge(n) => format!("the answer is larger than {n} bytes"),
        }
    }
}

/// A response read in full, within the size limit.
#[derive(Debug)]
pub struct Fetched {
    /// The status.
    pub status: StatusCode,
    /// The `Content-Type`, lower-cased, without parameters.
    pub content_type: Option<String>,
    /// Every header.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// The outbound client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
    timeout: Duration,
    max_bytes: usize,
}

impl Outbound {
    /// Builds the client. Reads the CA file when one is given; performs no network I/O.
    pub fn new(options: &OutboundOptions) -> Result<Self, OutboundBuildError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // No retries: reqwest's default retries HTTP/2 and HTTP/3 refusals only (this
            // client speaks HTTP/1.1) but copies every request's headers and body beforehand in
            // case it must, two copies per login (callgrind, bench/NOTES.md).
            .retry(reqwest::retry::never().max_retries_per_request(0))
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout.min(options.timeout))
            .user_agent(concat!("lakests/", env!("CARGO_PKG_VERSION")));
        if !options.env_proxy {
            builder = builder.no_proxy();
        }
        if let Some(path) = &options.ca_file {
            builder = builder.tls_certs_merge(read_ca(path)?);
        }
        Ok(Self {
            client: builder.build().map_err(OutboundBuildError::Client)?,
            timeout: options.timeout,
            max_bytes: options.max_bytes,
        })
    }

    /// The underlying client, to build requests.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The overall bound of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` and reads the whole body, all within the overall timeout.
    pub async fn execute(&self, request: RequestBuilder) -> Result<Fetched, FetchError> {
        self.execute_within(request, self.timeout).await
    }

    /// [`Outbound::execute`] bounded by `budget` when it is shorter than the overall timeout
    /// (a caller's deadline).
    pub async fn execute_within(
        &self,
        request: RequestBuilder,
        budget: Duration,
    ) -> Result<Fetched, FetchError> {
        let budget = budget.min(self.timeout);
        let max = self.max_bytes;
        let call = async move {
            let mut resp = request.timeout(budget).send().await.map_err(classify)?;
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
            let headers = std::mem::take(resp.headers_mut());
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
                headers,
                body,
            })
        };
        // reqwest's own timeout covers the body too; this one makes the bound independent of
        // how the body is read.
        match tokio::time::timeout(budget, call).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout),
        }
    }
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, OutboundBuildError> {
    let pem = std::fs::read(path).map_err(|source| OutboundBuildError::CaFile {
        path: path.to_path_buf(),
        source,
    })?;
    reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| OutboundBuildError::CaBundle {
            path: path.to_path_buf(),
        })
}

fn classify(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_connect() {
        FetchError::Connect(innermost(&e))
    } else {
        FetchError::Transport(innermost(&e))
    }
}

/// The innermost cause of `e`, which names what happened ("Connection refused", "invalid peer
/// certificate: UnknownIssuer") without the URL.
fn innermost(e: &reqwest::Error) -> String {
    let mut innermost = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        innermost = Some(s.to_string());
        source = s.source();
    }
    innermost.unwrap_or_else(|| match e.url() {
        Some(url) => e.to_string().replace(url.as_str(), "(url)"),
        None => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_names_its_cause_and_no_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let out = Outbound::new(&OutboundOptions::new(Duration::from_secs(5), 1024)).unwrap();
        let url = format!("http://{addr}/secret?code=abc");
        let err = out.execute(out.client().get(&url)).await.unwrap_err();
        assert!(matches!(err, FetchError::Connect(_)), "{err:?}");
        assert!(!err.cause().contains("code=abc"), "{}", err.cause());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused_at_build() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = OutboundOptions::new(Duration::from_secs(1), 1);
        opts.ca_file = Some(dir.path().join("absent.pem"));
        assert!(matches!(
            Outbound::new(&opts),
            Err(OutboundBuildError::CaFile { .. })
        ));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        opts.ca_file = Some(empty);
        assert!(matches!(
            Outbound::new(&opts),
            Err(OutboundBuildError::CaBundle { .. })
        ));
    }
}
