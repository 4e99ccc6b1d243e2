//! The token cache: one JSON file per endpoint under the user's configuration directory
//! (`<config>/lakests/tokens/<sha256(endpoint)>.json`), 0600 in a 0700 directory, written
//! atomically, plus a per-endpoint lock file so that two logins never open two browser tabs.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::error::LoginError;
use crate::secret::AccessToken;

/// Largest cache file read.
const MAX_CACHE_FILE_BYTES: u64 = 64 * 1024;

/// One cached login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedToken {
    /// The normalized endpoint the token is for.
    pub endpoint: String,
    /// The lakeFS token.
    pub token: AccessToken,
    /// Unix seconds at which it expires.
    pub token_expiration: i64,
    /// The lakeFS user name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Unix seconds at which it was obtained.
    pub obtained_at: i64,
}

impl CachedToken {
    /// Whether the token still has more than `margin_seconds` to live at `now`.
    pub fn usable_at(&self, now: i64, margin_seconds: i64) -> bool {
        self.token_expiration.saturating_sub(now) > margin_seconds
    }
}

/// Holding one of these keeps other logins for the same endpoint waiting.
pub struct CacheLock(#[allow(dead_code)] Box<dyn Send>);

impl CacheLock {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(inner: impl Send + 'static) -> Self {
        Self(Box::new(inner))
    }
}

impl std::fmt::Debug for CacheLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheLock")
    }
}

/// Where tokens are kept between runs.
pub trait TokenCache: Send + Sync {
    /// The cached token for `endpoint`, if any (expired ones too).
    fn load(&self, endpoint: &Endpoint) -> Result<Option<CachedToken>, LoginError>;
    /// Stores (replaces) the token for its endpoint.
    fn store(&self, endpoint: &Endpoint, token: &CachedToken) -> Result<(), LoginError>;
    /// Removes the token for `endpoint`; whether there was one.
    fn remove(&self, endpoint: &Endpoint) -> Result<bool, LoginError>;
    /// Takes the per-endpoint login lock without waiting; `None` when another login holds it.
    fn try_lock(&self, endpoint: &Endpoint) -> Result<Option<CacheLock>, LoginError>;
    /// The endpoint whose cached token is `token`, if any (to name the server whose token
    /// lakectl's single-server cache held).
    fn endpoint_holding(&self, token: &str) -> Result<Option<String>, LoginError>;
}

/// At most this many cache files are looked at when searching for a token.
const MAX_FILES_SEARCHED: usize = 1000;

/// The file-backed cache.
#[derive(Debug, Clone)]
pub struct FileTokenCache {
    dir: PathBuf,
}

impl FileTokenCache {
    /// The cache in `dirs::config_dir()/lakests/tokens` (`$XDG_CONFIG_HOME` on Linux).
    pub fn in_config_dir() -> Result<Self, LoginError> {
        let base = dirs::config_dir().ok_or_else(|| LoginError::Cache {
            path: PathBuf::from("~/.config"),
            cause: "cannot find the user's configuration directory (set HOME or XDG_CONFIG_HOME)"
                .into(),
        })?;
        Ok(Self::in_dir(base.join("lakests").join("tokens")))
    }

    /// The cache in a given directory.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding the token of `endpoint`.
    pub fn token_path(&self, endpoint: &Endpoint) -> PathBuf {
        self.dir.join(format!("{}.json", endpoint.cache_key()))
    }

    fn lock_path(&self, endpoint: &Endpoint) -> PathBuf {
        self.dir.join(format!("{}.lock", endpoint.cache_key()))
    }

    /// Creates the directory (0700) if needed and tightens its mode if it is looser.
    fn ensure_dir(&self) -> Result<(), LoginError> {
        let err = |cause: std::io::Error| LoginError::Cache {
            path: self.dir.clone(),
            cause: cause.to_string(),
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
            builder.mode(0o700);
            builder.create(&self.dir).map_err(err)?;
            let mode = std::fs::metadata(&self.dir)
                .map_err(err)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(err)?;
            }
        }
        #[cfg(not(unix))]
        builder.create(&self.dir).map_err(err)?;
        Ok(())
    }
}

impl TokenCache for FileTokenCache {
    fn load(&self, endpoint: &Endpoint) -> Result<Option<CachedToken>, LoginError> {
        let path = self.token_path(endpoint);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(LoginError::Cache {
                    path,
                    cause: e.to_string(),
                });
            }
        };
        let mut text = String::new();
        if let Err(e) = file.take(MAX_CACHE_FILE_BYTES).read_to_string(&mut text) {
            return Err(LoginError::Cache {
                path,
                cause: e.to_string(),
            });
        }
        // A damaged or foreign file is treated as no token: the next login replaces it.
        match serde_json::from_str::<CachedToken>(&text) {
            Ok(t) if t.endpoint == endpoint.as_str() => Ok(Some(t)),
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable token cache file");
                Ok(None)
            }
        }
    }

    fn store(&self, endpoint: &Endpoint, token: &CachedToken) -> Result<(), LoginError> {
        self.ensure_dir()?;
        let path = self.token_path(endpoint);
        let err = |cause: String| LoginError::Cache {
            path: path.clone(),
            cause,
        };
        let json = serde_json::to_vec_pretty(token).map_err(|e| err(e.to_string()))?;
        // tempfile creates the file 0600 in the same directory; rename makes it appear whole.
        let mut tmp = tempfile::Builder::new()
            .prefix(".token-")
            .suffix(".tmp")
            .tempfile_in(&self.dir)
            .map_err(|e| err(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| err(e.to_string()))?;
        }
        tmp.write_all(&json).map_err(|e| err(e.to_string()))?;
        tmp.write_all(b"\n").map_err(|e| err(e.to_string()))?;
        tmp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
        tmp.persist(&path).map_err(|e| err(e.error.to_string()))?;
        Ok(())
    }

    fn remove(&self, endpoint: &Endpoint) -> Result<bool, LoginError> {
        let path = self.token_path(endpoint);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(LoginError::Cache {
                path,
                cause: e.to_string(),
            }),
        }
    }

    fn endpoint_holding(&self, token: &str) -> Result<Option<String>, LoginError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(LoginError::Cache {
                    path: self.dir.clone(),
                    cause: e.to_string(),
                });
            }
        };
        for entry in entries.flatten().take(MAX_FILES_SEARCHED) {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let mut text = String::new();
            if file
                .take(MAX_CACHE_FILE_BYTES)
                .read_to_string(&mut text)
                .is_err()
            {
                continue;
            }
            if let Ok(t) = serde_json::from_str::<CachedToken>(&text)
                && t.token.expose() == token
            {
                return Ok(Some(t.endpoint));
            }
        }
        Ok(None)
    }

    fn try_lock(&self, endpoint: &Endpoint) -> Result<Option<CacheLock>, LoginError> {
        self.ensure_dir()?;
        let path = self.lock_path(endpoint);
        let err = |cause: String| LoginError::Cache {
            path: path.clone(),
            cause,
        };
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let file = opts.open(&path).map_err(|e| err(e.to_string()))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(CacheLock::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(err(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(endpoint: &Endpoint, exp: i64) -> CachedToken {
        CachedToken {
            endpoint: endpoint.to_string(),
            token: AccessToken::new("jwt-value"),
            token_expiration: exp,
            username: Some("alice".into()),
            obtained_at: exp - 3600,
        }
    }

    #[test]
    fn a_stored_token_is_loaded_back_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::in_dir(dir.path().join("lakests/tokens"));
        let ep = Endpoint::parse("http://lakefs.example.com").unwrap();
        assert_eq!(cache.load(&ep).unwrap(), None);
        let t = token(&ep, 2_000_000_000);
        cache.store(&ep, &t).unwrap();
        assert_eq!(cache.load(&ep).unwrap(), Some(t.clone()));
        let other = Endpoint::parse("http://other.example.com").unwrap();
        assert_eq!(cache.load(&other).unwrap(), None);
        assert!(cache.remove(&ep).unwrap());
        assert!(!cache.remove(&ep).unwrap());
        assert_eq!(cache.load(&ep).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_0600_in_a_0700_directory_and_no_temp_file_remains() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("lakests/tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cache = FileTokenCache::in_dir(&tokens);
        let ep = Endpoint::parse("http://lakefs.example.com").unwrap();
        cache.store(&ep, &token(&ep, 2_000_000_000)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tokens), 0o700, "a loose directory is tightened");
        assert_eq!(mode(&cache.token_path(&ep)), 0o600);
        let names: Vec<String> = std::fs::read_dir(&tokens)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![format!("{}.json", ep.cache_key())]);
    }

    #[test]
    fn a_damaged_file_counts_as_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::in_dir(dir.path());
        let ep = Endpoint::parse("http://lakefs.example.com").unwrap();
        std::fs::write(cache.token_path(&ep), "{not json").unwrap();
        assert_eq!(cache.load(&ep).unwrap(), None);
        cache.store(&ep, &token(&ep, 5)).unwrap();
        assert_eq!(cache.load(&ep).unwrap().unwrap().token_expiration, 5);
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::in_dir(dir.path());
        let ep = Endpoint::parse("http://lakefs.example.com").unwrap();
        let other = Endpoint::parse("http://other.example.com").unwrap();
        let held = cache.try_lock(&ep).unwrap().expect("first lock");
        assert!(cache.try_lock(&ep).unwrap().is_none(), "second lock waits");
        assert!(
            cache.try_lock(&other).unwrap().is_some(),
            "other endpoints are independent"
        );
        drop(held);
        assert!(cache.try_lock(&ep).unwrap().is_some());
    }

    #[test]
    fn usability_keeps_a_safety_margin() {
        let ep = Endpoint::parse("http://lakefs.example.com").unwrap();
        let t = token(&ep, 1000);
        assert!(t.usable_at(939, 60));
        assert!(!t.usable_at(940, 60));
        assert!(!t.usable_at(2000, 60));
    }
}
