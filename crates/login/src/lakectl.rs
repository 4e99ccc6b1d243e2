//! lakectl's token cache (WIRE.md §8): `~/.lakectl/cache/lakectl_token_cache.json`, which
//! lakectl reads when no access key is configured and sends as `Authorization: Bearer`. Writing
//! it after a login makes lakectl work with no further step.
//!
//! The file is JSON `{"token", "expiration_time"}` in a 0700 directory, 0600, replaced
//! atomically (a temp file in the same directory, then rename), as lakectl v1.84 writes it
//! itself (`pkg/authentication/externalidp/awsiam/token_caching.go`). lakectl sends the token
//! it finds there without looking at `expiration_time`. It holds one token for every server: it is not keyed
//! by endpoint, so a login to a second server replaces the first one's token.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::{CachedToken, TokenCache};
use crate::error::LoginError;

/// The file name lakectl uses.
pub const FILE_NAME: &str = "lakectl_token_cache.json";
/// Largest file read back.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// The JSON lakectl reads and writes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LakectlToken {
    /// The lakeFS token.
    pub token: String,
    /// Unix seconds at which it expires.
    pub expiration_time: i64,
}

impl std::fmt::Debug for LakectlToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakectlToken")
            .field("token", &"[redacted]")
            .field("expiration_time", &self.expiration_time)
            .finish()
    }
}

impl std::fmt::Debug for LakectlTokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LakectlTokenFile")
            .field("path", &self.path)
            .finish()
    }
}

/// lakectl's token cache file.
#[derive(Clone)]
pub struct LakectlTokenFile {
    path: PathBuf,
}

/// What writing lakectl's cache did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakectlSync {
    /// It already held this token.
    Unchanged,
    /// It held no usable token; it now holds this one.
    Written,
    /// It held the unexpired token of another lakeFS server (named when lakests logged in to
    /// it), which is now replaced.
    Replaced {
        /// The other server, when lakests knows it; `None` when lakests did not write that token
        /// (lakectl's own login, for example).
        previous_endpoint: Option<String>,
    },
}

impl LakectlTokenFile {
    /// `$HOME/.lakectl/cache/lakectl_token_cache.json`, where lakectl looks.
    pub fn in_home() -> Result<Self, LoginError> {
        let home = dirs::home_dir().ok_or_else(|| LoginError::Cache {
            path: PathBuf::from("~/.lakectl/cache"),
            cause: "cannot find the home directory (set HOME)".into(),
        })?;
        Ok(Self::in_dir(home.join(".lakectl").join("cache")))
    }

    /// The file in a given directory.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        Self {
            path: dir.as_ref().join(FILE_NAME),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    fn err(&self, cause: impl ToString) -> LoginError {
        LoginError::Cache {
            path: self.path.clone(),
            cause: cause.to_string(),
        }
    }

    /// The token the file holds; `None` when there is no file or it is not lakectl's JSON.
    pub fn read(&self) -> Result<Option<LakectlToken>, LoginError> {
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let mut text = String::new();
        file.take(MAX_FILE_BYTES)
            .read_to_string(&mut text)
            .map_err(|e| self.err(e))?;
        Ok(serde_json::from_str(&text).ok())
    }

    /// Writes `token` (0600 in a 0700 directory, atomically).
    pub fn write(&self, token: &str, expiration_time: i64) -> Result<(), LoginError> {
        let dir = self.dir();
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(dir).map_err(|e| self.err(e))?;
        let json = serde_json::to_vec(&LakectlToken {
            token: token.to_owned(),
            expiration_time,
        })
        .map_err(|e| self.err(e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!("{FILE_NAME}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| self.err(e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| self.err(e))?;
        }
        tmp.write_all(&json).map_err(|e| self.err(e))?;
        tmp.write_all(b"\n").map_err(|e| self.err(e))?;
        tmp.as_file().sync_all().map_err(|e| self.err(e))?;
        tmp.persist(&self.path).map_err(|e| self.err(e.error))?;
        Ok(())
    }

    /// Makes the file hold `t`'s token, saying what it replaced. `cache` names the server of
    /// a token lakests wrote before; `replaced` is the token lakests's cache held for `t`'s
    /// server before this login (the new one has taken its place there by now, so `cache`
    /// no longer knows it).
    pub fn sync(
        &self,
        t: &CachedToken,
        cache: &dyn TokenCache,
        replaced: Option<&str>,
        now: i64,
    ) -> Result<LakectlSync, LoginError> {
        let previous = self.read()?;
        let outcome = match &previous {
            Some(p) if p.token == t.token.expose() => {
                if p.expiration_time == t.token_expiration {
                    return Ok(LakectlSync::Unchanged);
                }
                LakectlSync::Written
            }
            // This server's previous token, which this login replaced.
            Some(p) if replaced == Some(p.token.as_str()) => LakectlSync::Written,
            Some(p) if !p.token.is_empty() && p.expiration_time > now => {
                let previous_endpoint = cache.endpoint_holding(&p.token)?;
                if previous_endpoint.as_deref() == Some(t.endpoint.as_str()) {
                    // An older token of the same server.
                    LakectlSync::Written
                } else {
                    LakectlSync::Replaced { previous_endpoint }
                }
            }
            _ => LakectlSync::Written,
        };
        self.write(t.token.expose(), t.token_expiration)?;
        Ok(outcome)
    }

    /// Removes the file when it holds `token`; whether it did.
    pub fn remove_if_holds(&self, token: &str) -> Result<bool, LoginError> {
        match self.read()? {
            Some(p) if p.token == token => match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(self.err(e)),
            },
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::FileTokenCache;
    use crate::endpoint::Endpoint;
    use crate::secret::AccessToken;

    fn cached(ep: &Endpoint, token: &str, exp: i64) -> CachedToken {
        CachedToken {
            endpoint: ep.to_string(),
            token: AccessToken::new(token),
            token_expiration: exp,
            username: None,
            obtained_at: exp - 3600,
        }
    }

    #[cfg(unix)]
    #[test]
    fn written_0600_in_0700_as_lakectl_json_with_no_temp_file_left() {
        use std::os::unix::fs::PermissionsExt as _;
        let home = tempfile::tempdir().unwrap();
        let f = LakectlTokenFile::in_dir(home.path().join(".lakectl/cache"));
        f.write("jwt", 2_000).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&home.path().join(".lakectl/cache")), 0o700);
        assert_eq!(mode(f.path()), 0o600);
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f.path()).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"token": "jwt", "expiration_time": 2_000})
        );
        let names: Vec<_> = std::fs::read_dir(home.path().join(".lakectl/cache"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
    }

    #[test]
    fn sync_says_what_it_replaced_and_remove_only_takes_our_token() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::in_dir(dir.path().join("tokens"));
        let f = LakectlTokenFile::in_dir(dir.path().join("lakectl"));
        let a = Endpoint::parse("http://a.example.com").unwrap();
        let b = Endpoint::parse("http://b.example.com").unwrap();
        let ta = cached(&a, "token-a", 5_000);
        let tb = cached(&b, "token-b", 5_000);
        cache.store(&a, &ta).unwrap();
        cache.store(&b, &tb).unwrap();

        assert_eq!(
            f.sync(&ta, &cache, None, 1_000).unwrap(),
            LakectlSync::Written
        );
        assert_eq!(
            f.sync(&ta, &cache, None, 1_001).unwrap(),
            LakectlSync::Unchanged
        );
        assert_eq!(
            f.sync(&tb, &cache, None, 1_002).unwrap(),
            LakectlSync::Replaced {
                previous_endpoint: Some("http://a.example.com".into())
            }
        );
        // A token lakests did not write (lakectl login, say).
        f.write("foreign", 9_000).unwrap();
        assert_eq!(
            f.sync(&ta, &cache, None, 1_004).unwrap(),
            LakectlSync::Replaced {
                previous_endpoint: None
            }
        );
        // An expired token is replaced silently.
        f.write("foreign", 900).unwrap();
        assert_eq!(
            f.sync(&ta, &cache, None, 1_005).unwrap(),
            LakectlSync::Written
        );

        assert!(!f.remove_if_holds("token-b").unwrap(), "not ours: kept");
        assert!(f.path().exists());
        assert!(f.remove_if_holds("token-a").unwrap());
        assert!(!f.path().exists());
        assert!(!f.remove_if_holds("token-a").unwrap());
    }

    #[test]
    fn a_forced_login_replaces_its_own_servers_older_token_without_a_warning() {
        // `lakests login --force` (or a login near expiry): lakests's cache already holds the
        // new token for the server when lakectl's file is synced, so only the token it held
        // before tells that lakectl's token is this server's older one, not a foreign one.
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::in_dir(dir.path().join("tokens"));
        let f = LakectlTokenFile::in_dir(dir.path().join("lakectl"));
        let a = Endpoint::parse("http://a.example.com").unwrap();
        let old = cached(&a, "token-old", 5_000);
        cache.store(&a, &old).unwrap();
        assert_eq!(
            f.sync(&old, &cache, None, 1_000).unwrap(),
            LakectlSync::Written
        );
        let new = cached(&a, "token-new", 6_000);
        cache.store(&a, &new).unwrap();
        assert_eq!(
            f.sync(&new, &cache, Some("token-old"), 1_001).unwrap(),
            LakectlSync::Written
        );
        assert_eq!(f.read().unwrap().unwrap().token, "token-new");
        // Without it, the same file looks foreign: what the CLI used to warn about.
        f.write("token-old", 5_000).unwrap();
        assert_eq!(
            f.sync(&new, &cache, None, 1_002).unwrap(),
            LakectlSync::Replaced {
                previous_endpoint: None
            }
        );
    }

    #[test]
    fn a_damaged_file_reads_as_no_token_and_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::in_dir(dir.path().join("tokens"));
        let f = LakectlTokenFile::in_dir(dir.path());
        std::fs::write(f.path(), "{oops").unwrap();
        assert_eq!(f.read().unwrap(), None);
        let ep = Endpoint::parse("http://a.example.com").unwrap();
        assert_eq!(
            f.sync(&cached(&ep, "t", 5_000), &cache, None, 1).unwrap(),
            LakectlSync::Written
        );
        assert_eq!(f.read().unwrap().unwrap().token, "t");
    }
}
