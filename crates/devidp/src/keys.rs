//! Signing keys: generated with aws-lc-rs (RSA 2048 and P-256), kept as PKCS#8 PEM files (0600)
//! in a 0700 directory with a small manifest, and rotated without losing the previous key.
//!
//! Per algorithm there are three roles: the *current* key signs ID tokens; the *previous* key
//! (after a rotation) stays in the JWKS so tokens it signed still verify; the *next* key is not
//! published yet. It is the key `rotate-keys` makes current, and the one the `unpublished_key`
//! fault signs with, so that fault gives a real signature under a `kid` no JWKS lists yet.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use lakests_config::SigningAlg;
use serde::{Deserialize, Serialize};

use crate::DevIdpError;

/// Name of the manifest in the keys directory.
pub const MANIFEST: &str = "keys.json";

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum KeyStatus {
    /// Signs ID tokens; published.
    Current,
    /// Signed before the last rotation; still published.
    Previous,
    /// Becomes current at the next rotation; not published.
    Next,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestEntry {
    kid: String,
    alg: SigningAlg,
    status: KeyStatus,
    file: String,
    created_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    keys: Vec<ManifestEntry>,
}

/// One loaded key.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: SigningAlg,
    pub(crate) status: KeyStatus,
    signer: std::sync::Arc<Signer>,
    pub(crate) jwk: Jwk,
}

/// A private key parsed once, when its file is loaded. jsonwebtoken's `EncodingKey` keeps the
/// PKCS#8 bytes and parses them again for every signature; for P-256 the parse checks the key
/// with a scalar multiplication as costly as the signature itself (callgrind, bench/NOTES.md).
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl SigningKey {
    /// The compact JWS of `claims` under `header`, as `jsonwebtoken::encode` makes it (the same
    /// JSON and base64url of each part; the signature by aws-lc-rs with the parsed key).
    pub(crate) fn sign<T: Serialize>(
        &self,
        header: &Header,
        claims: &T,
    ) -> Result<String, SignError> {
        let part = |value: Vec<u8>| URL_SAFE_NO_PAD.encode(value);
        let header = serde_json::to_vec(header).map_err(|_| SignError)?;
        let claims = serde_json::to_vec(claims).map_err(|_| SignError)?;
        let input = format!("{}.{}", part(header), part(claims));
        let rng = SystemRandom::new();
        let signature = match self.signer.as_ref() {
            Signer::Rsa(key) => {
                let mut out = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut out)
                    .map_err(|_| SignError)?;
                out
            }
            Signer::Ec(key) => key
                .sign(&rng, input.as_bytes())
                .map_err(|_| SignError)?
                .as_ref()
                .to_vec(),
        };
        Ok(format!("{input}.{}", part(signature)))
    }
}

/// A token could not be signed (the claims do not serialize, or aws-lc-rs refused).
#[derive(Debug)]
pub(crate) struct SignError;

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Every key of a keys directory.
#[derive(Debug, Clone)]
pub(crate) struct KeySet {
    keys: Vec<SigningKey>,
}

pub(crate) fn jwt_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::ES256 => Algorithm::ES256,
    }
}

const ALGS: [SigningAlg; 2] = [SigningAlg::RS256, SigningAlg::ES256];

impl KeySet {
    /// The key with `status` for `alg`.
    pub(crate) fn get(&self, alg: SigningAlg, status: KeyStatus) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|k| k.alg == alg && k.status == status)
    }

    /// The published keys (current and previous), current first.
    pub(crate) fn jwks(&self) -> JwkSet {
        let mut keys: Vec<&SigningKey> = self
            .keys
            .iter()
            .filter(|k| k.status != KeyStatus::Next)
            .collect();
        keys.sort_by_key(|k| (k.status != KeyStatus::Current, k.alg != SigningAlg::RS256));
        JwkSet {
            keys: keys.into_iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> DevIdpError {
    DevIdpError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the directory (0700) or tightens an existing one to 0700.
fn ensure_dir(dir: &Path) -> Result<(), DevIdpError> {
    if dir.is_dir() {
        let meta = fs::metadata(dir).map_err(|e| io_err("read", dir, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| io_err("set permissions of", dir, e))?;
        }
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_err("create", dir, e))?;
    // `recursive` applies the mode to every new level, but a umask can loosen it.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| io_err("set permissions of", dir, e))
}

/// Writes `bytes` to `dir/name` atomically (a 0600 temporary file, fsync, rename).
fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DevIdpError> {
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io_err("create", &tmp, e))?;
        f.write_all(bytes).map_err(|e| io_err("write", &tmp, e))?;
        f.sync_all().map_err(|e| io_err("sync", &tmp, e))?;
        fs::rename(&tmp, &target).map_err(|e| io_err("rename into place", &target, e))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

/// A fresh PKCS#8 PEM private key for `alg`.
fn generate_pem(alg: SigningAlg) -> Result<String, DevIdpError> {
    let der: Vec<u8> = match alg {
        SigningAlg::RS256 => {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .map_err(|_| DevIdpError::KeyGeneration)?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp)
                .map_err(|_| DevIdpError::KeyGeneration)?;
            der.as_ref().to_vec()
        }
        SigningAlg::ES256 => {
            let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| DevIdpError::KeyGeneration)?;
            let doc = kp.to_pkcs8v1().map_err(|_| DevIdpError::KeyGeneration)?;
            doc.as_ref().to_vec()
        }
    };
    Ok(pem(&der))
}

/// Parses a PEM key and derives its public JWK and `kid` (the RFC 7638 thumbprint).
fn load_pem(pem: &str, alg: SigningAlg, status: KeyStatus) -> Result<SigningKey, &'static str> {
    let not_pkcs8 = "not a PKCS#8 PEM private key of the expected type";
    let encoding = match alg {
        SigningAlg::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        SigningAlg::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
    }
    .map_err(|_| not_pkcs8)?;
    let der = pem::parse(pem).map_err(|_| not_pkcs8)?;
    let signer = match alg {
        SigningAlg::RS256 => RsaKeyPair::from_pkcs8(der.contents()).map(Signer::Rsa),
        SigningAlg::ES256 => {
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.contents())
                .map(Signer::Ec)
        }
    }
    .map_err(|_| not_pkcs8)?;
    let mut jwk = Jwk::from_encoding_key(&encoding, jwt_alg(alg))
        .map_err(|_| "the public key cannot be derived")?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256);
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok(SigningKey {
        kid,
        alg,
        status,
        signer: std::sync::Arc::new(signer),
        jwk,
    })
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Generates a key, writes its file and returns its manifest entry.
fn new_key(dir: &Path, alg: SigningAlg, status: KeyStatus) -> Result<ManifestEntry, DevIdpError> {
    let pem = generate_pem(alg)?;
    let key = load_pem(&pem, alg, status).map_err(|reason| DevIdpError::KeyFile {
        path: dir.to_path_buf(),
        reason,
    })?;
    let alg_name = match alg {
        SigningAlg::RS256 => "rs256",
        SigningAlg::ES256 => "es256",
    };
    let file = format!("{alg_name}-{}.pem", key.kid);
    write_private(dir, &file, pem.as_bytes())?;
    Ok(ManifestEntry {
        kid: key.kid,
        alg,
        status,
        file,
        created_at: now_unix(),
    })
}

fn read_manifest(dir: &Path) -> Result<Option<Manifest>, DevIdpError> {
    let path = dir.join(MANIFEST);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path, e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| DevIdpError::Manifest {
            path,
            reason: e.to_string(),
        })
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), DevIdpError> {
    let text = serde_json::to_vec_pretty(m).map_err(|e| DevIdpError::Manifest {
        path: dir.join(MANIFEST),
        reason: e.to_string(),
    })?;
    write_private(dir, MANIFEST, &text)
}

/// Adds whatever is missing (a current and a next key per algorithm); true when it changed.
fn complete(dir: &Path, m: &mut Manifest) -> Result<bool, DevIdpError> {
    let missing: Vec<(SigningAlg, KeyStatus)> = ALGS
        .into_iter()
        .flat_map(|alg| [(alg, KeyStatus::Current), (alg, KeyStatus::Next)])
        .filter(|(alg, status)| !m.keys.iter().any(|k| k.alg == *alg && k.status == *status))
        .collect();
    // A thread per key: RSA-2048 generation (a search for primes, 50-300 ms each) dominates a
    // first start, and the two RSA keys are made side by side instead of one after the other.
    let made: Vec<Result<ManifestEntry, DevIdpError>> = std::thread::scope(|scope| {
        let jobs: Vec<_> = missing
            .iter()
            .map(|(alg, status)| scope.spawn(move || new_key(dir, *alg, *status)))
            .collect();
        jobs.into_iter()
            .map(|job| job.join().unwrap_or(Err(DevIdpError::KeyGeneration)))
            .collect()
    });
    for entry in made {
        m.keys.push(entry?);
    }
    Ok(!missing.is_empty())
}

fn check_manifest(path: &Path, m: &Manifest) -> Result<(), DevIdpError> {
    let mut seen = BTreeSet::new();
    for k in &m.keys {
        if !seen.insert((k.alg as u8, k.status as u8)) {
            return Err(DevIdpError::Manifest {
                path: path.to_path_buf(),
                reason: format!("more than one {:?} {:?} key", k.status, k.alg),
            });
        }
        if k.file.contains('/') || k.file.starts_with('.') || !k.file.ends_with(".pem") {
            return Err(DevIdpError::Manifest {
                path: path.to_path_buf(),
                reason: format!("key file name {:?} is not a plain .pem name", k.file),
            });
        }
    }
    Ok(())
}

fn load_entries(dir: &Path, m: &Manifest) -> Result<KeySet, DevIdpError> {
    let mut keys = Vec::new();
    for e in &m.keys {
        let path = dir.join(&e.file);
        let meta = fs::metadata(&path).map_err(|err| io_err("read", &path, err))?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "a development IdP key file was readable by others; setting it to 0600");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                .map_err(|err| io_err("set permissions of", &path, err))?;
        }
        let pem = fs::read_to_string(&path).map_err(|err| io_err("read", &path, err))?;
        let key = load_pem(&pem, e.alg, e.status).map_err(|reason| DevIdpError::KeyFile {
            path: path.clone(),
            reason,
        })?;
        if key.kid != e.kid {
            return Err(DevIdpError::KeyFile {
                path,
                reason: "the key does not match the kid the manifest gives it",
            });
        }
        keys.push(key);
    }
    Ok(KeySet { keys })
}

/// Loads the keys of `dir`, generating and persisting whatever is missing (all of them on
/// first start).
pub(crate) fn load_or_create(dir: &Path) -> Result<KeySet, DevIdpError> {
    ensure_dir(dir)?;
    let mut m = read_manifest(dir)?.unwrap_or_default();
    check_manifest(&dir.join(MANIFEST), &m)?;
    if complete(dir, &mut m)? {
        write_manifest(dir, &m)?;
    }
    load_entries(dir, &m)
}

/// `lakests idp rotate-keys`: per algorithm, the next key becomes current, the current one
/// previous (still published), the old previous one is dropped, and a new next key is made.
/// Returns the kids of the new current keys (RS256 first).
pub fn rotate_keys(keys_dir: &Path) -> Result<Vec<String>, DevIdpError> {
    ensure_dir(keys_dir)?;
    let Some(mut m) = read_manifest(keys_dir)? else {
        // Nothing to rotate: the first keys are new keys.
        let set = load_or_create(keys_dir)?;
        return Ok(current_kids(&set));
    };
    check_manifest(&keys_dir.join(MANIFEST), &m)?;
    complete(keys_dir, &mut m)?;
    let dropped: Vec<String> = m
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Previous)
        .map(|k| k.file.clone())
        .collect();
    m.keys.retain(|k| k.status != KeyStatus::Previous);
    for k in &mut m.keys {
        k.status = match k.status {
            KeyStatus::Current => KeyStatus::Previous,
            KeyStatus::Next | KeyStatus::Previous => KeyStatus::Current,
        };
    }
    for alg in ALGS {
        m.keys.push(new_key(keys_dir, alg, KeyStatus::Next)?);
    }
    write_manifest(keys_dir, &m)?;
    for file in dropped {
        let _ = fs::remove_file(keys_dir.join(file));
    }
    let set = load_entries(keys_dir, &m)?;
    Ok(current_kids(&set))
}

fn current_kids(set: &KeySet) -> Vec<String> {
    ALGS.iter()
        .filter_map(|alg| set.get(*alg, KeyStatus::Current).map(|k| k.kid.clone()))
        .collect()
}

/// The manifest's stamp when read, and the keys read then.
type Loaded = (Option<Stamp>, std::sync::Arc<KeySet>);

/// What tells a rewritten manifest from the one loaded: modification time, length and inode
/// (every rewrite renames a new file into place).
type Stamp = (SystemTime, u64, u64);

/// The keys of a directory, reloaded when `rotate-keys` rewrites the manifest while the
/// server runs.
#[derive(Debug)]
pub(crate) struct KeyStore {
    dir: PathBuf,
    state: std::sync::RwLock<Loaded>,
}

fn stamp(dir: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(dir.join(MANIFEST)).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

impl KeyStore {
    pub(crate) fn open(dir: &Path) -> Result<Self, DevIdpError> {
        let set = load_or_create(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            state: std::sync::RwLock::new((stamp(dir), std::sync::Arc::new(set))),
        })
    }

    /// The current key set, re-read first if the manifest changed on disk.
    pub(crate) fn keys(&self) -> std::sync::Arc<KeySet> {
        let now = stamp(&self.dir);
        {
            let guard = self.state.read().unwrap_or_else(|e| e.into_inner());
            if guard.0 == now {
                return guard.1.clone();
            }
        }
        let mut guard = self.state.write().unwrap_or_else(|e| e.into_inner());
        if guard.0 != now {
            match read_manifest(&self.dir).and_then(|m| match m {
                Some(m) => load_entries(&self.dir, &m),
                None => Err(DevIdpError::Manifest {
                    path: self.dir.join(MANIFEST),
                    reason: "missing".into(),
                }),
            }) {
                Ok(set)
                    if ALGS
                        .iter()
                        .all(|a| set.get(*a, KeyStatus::Current).is_some()) =>
                {
                    tracing::info!("development IdP keys changed on disk; reloaded them");
                    guard.1 = std::sync::Arc::new(set);
                }
                Ok(_) => tracing::warn!(
                    "development IdP keys on disk lack a current key; keeping the loaded ones"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reload the development IdP keys; keeping the loaded ones");
                }
            }
            guard.0 = now;
        }
        guard.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_reload_with_the_same_kids_and_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("idp-keys");
        let first = load_or_create(&keys_dir).unwrap();
        let again = load_or_create(&keys_dir).unwrap();
        for alg in ALGS {
            for status in [KeyStatus::Current, KeyStatus::Next] {
                assert_eq!(
                    first.get(alg, status).unwrap().kid,
                    again.get(alg, status).unwrap().kid
                );
            }
        }
        let mode = fs::metadata(&keys_dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        for entry in fs::read_dir(&keys_dir).unwrap() {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{:?}", entry.file_name());
        }
        assert_eq!(first.jwks().keys.len(), 2, "next keys are not published");
    }

    /// The kept key signs what jsonwebtoken would: byte for byte for RS256 (PKCS#1 v1.5 is
    /// deterministic), and a signature jsonwebtoken verifies with the published JWK for ES256.
    #[test]
    fn kept_keys_sign_what_jsonwebtoken_signs_and_verifies() {
        let claims = serde_json::json!({"iss": "http://127.0.0.1:1", "sub": "alice", "aud": "c", "exp": 4_000_000_000u64});
        for alg in ALGS {
            let pem = generate_pem(alg).unwrap();
            let key = load_pem(&pem, alg, KeyStatus::Current).unwrap();
            let mut header = Header::new(jwt_alg(alg));
            header.kid = Some(key.kid.clone());
            let token = key.sign(&header, &claims).unwrap();
            if alg == SigningAlg::RS256 {
                let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
                assert_eq!(
                    token,
                    jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
                );
            }
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.jwk).unwrap();
            let mut validation = jsonwebtoken::Validation::new(jwt_alg(alg));
            validation.set_audience(&["c"]);
            let data =
                jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
            assert_eq!(data.claims, claims);
            assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
            let other = load_pem(&generate_pem(alg).unwrap(), alg, KeyStatus::Current).unwrap();
            let foreign = jsonwebtoken::DecodingKey::from_jwk(&other.jwk).unwrap();
            assert!(
                jsonwebtoken::decode::<serde_json::Value>(&token, &foreign, &validation).is_err()
            );
        }
    }

    #[test]
    fn a_tampered_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let set = load_or_create(dir.path()).unwrap();
        let m = read_manifest(dir.path()).unwrap().unwrap();
        let rs = m
            .keys
            .iter()
            .find(|k| k.alg == SigningAlg::RS256 && k.status == KeyStatus::Current)
            .unwrap();
        let other = generate_pem(SigningAlg::RS256).unwrap();
        fs::write(dir.path().join(&rs.file), other).unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
        drop(set);
    }
}
