//! Secret access keys at rest: AES-256-GCM (aws-lc-rs) under a key derived with HKDF-SHA256
//! from `auth.encrypt.secret_key`. The access key id is the associated data, so a sealed secret
//! moved to another key's row does not open. Layout: version (1) | nonce (12) | ciphertext+tag.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};

const VERSION: u8 = 1;
const SALT: &[u8] = b"lakests credential secrets";
const INFO: &[u8] = b"lakests credential secret v1 aes-256-gcm";

/// Why a secret could not be sealed or opened. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The system random generator or the cipher failed.
    #[error("sealing failed")]
    Seal,
    /// Tampered, truncated, of another key id, or sealed under another secret key.
    #[error("a sealed secret does not open (was auth.encrypt.secret_key changed?)")]
    Open,
}

/// Seals and opens secret access keys.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// The box keyed from the raw bytes of `auth.encrypt.secret_key`.
    pub fn new(secret_key: &[u8]) -> Result<Self, SealError> {
        let prk = Salt::new(HKDF_SHA256, SALT).extract(secret_key);
        let okm = prk
            .expand(&[INFO], &AES_256_GCM)
            .map_err(|_| SealError::Seal)?;
        Ok(Self {
            key: LessSafeKey::new(UnboundKey::from(okm)),
        })
    }

    /// Seals `secret` for the access key `access_key_id`, with a fresh random nonce.
    pub fn seal(&self, access_key_id: &str, secret: &str) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealError::Seal)?;
        let mut in_out = secret.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(access_key_id.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| SealError::Seal)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + in_out.len());
        sealed.push(VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    /// Opens what [`Self::seal`] sealed for the same access key id.
    pub fn open(&self, access_key_id: &str, sealed: &[u8]) -> Result<String, SealError> {
        let (&version, rest) = sealed.split_first().ok_or(SealError::Open)?;
        if version != VERSION || rest.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut in_out = ciphertext.to_vec();
        let clear = self
            .key
            .open_in_place(nonce, Aad::from(access_key_id.as_bytes()), &mut in_out)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(clear.to_vec()).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(key: &str) -> SecretBox {
        SecretBox::new(key.as_bytes()).expect("box")
    }

    #[test]
    fn a_sealed_secret_opens_only_with_the_same_key_and_access_key_id() {
        let b = boxed("a-shared-secret-of-enough-length-0123456789");
        let sealed = b.seal("AKIAJEXAMPLE", "s3cr3t/+=").expect("seal");
        assert!(
            !sealed.windows(6).any(|w| w == b"s3cr3t"),
            "the secret is not in the sealed bytes"
        );
        assert_eq!(b.open("AKIAJEXAMPLE", &sealed).as_deref(), Ok("s3cr3t/+="));
        assert_eq!(b.open("AKIAJOTHER", &sealed), Err(SealError::Open));
        let other = boxed("another-shared-secret-of-enough-length-012345");
        assert_eq!(other.open("AKIAJEXAMPLE", &sealed), Err(SealError::Open));
        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(b.open("AKIAJEXAMPLE", &tampered), Err(SealError::Open));
        assert_eq!(b.open("AKIAJEXAMPLE", &sealed[..5]), Err(SealError::Open));
        assert_eq!(b.open("AKIAJEXAMPLE", &[]), Err(SealError::Open));
    }

    #[test]
    fn sealing_twice_gives_different_bytes() {
        let b = boxed("k");
        let one = b.seal("A", "same").expect("seal");
        let two = b.seal("A", "same").expect("seal");
        assert_ne!(one, two, "a fresh nonce each time");
    }
}
