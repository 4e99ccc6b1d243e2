//! Access keys shaped like lakeFS's own (`pkg/auth/keys`): `AKIAJ` + 14 of `A-Z2-7` + `Q`,
//! and a secret of 30 random bytes in standard base64 (40 characters).

use base64::Engine;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The system random generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random generator failed")]
pub struct RandomError;

/// A new access key id.
pub fn access_key_id() -> Result<String, RandomError> {
    let mut bytes = [0u8; 14];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomError)?;
    let mut id = String::with_capacity(20);
    id.push_str("AKIAJ");
    // 256 is a multiple of 32: taking the low five bits is unbiased.
    id.extend(
        bytes
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)])),
    );
    id.push('Q');
    Ok(id)
}

/// A new secret access key.
pub fn secret_access_key() -> Result<String, RandomError> {
    let mut bytes = [0u8; 30];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_lakefs_shapes() {
        for _ in 0..50 {
            let id = access_key_id().expect("id");
            assert_eq!(id.len(), 20, "{id}");
            assert!(id.starts_with("AKIAJ") && id.ends_with('Q'), "{id}");
            assert!(id[5..19].bytes().all(|b| BASE32.contains(&b)), "{id}");
            let secret = secret_access_key().expect("secret");
            assert_eq!(secret.len(), 40);
            assert_eq!(
                base64::engine::general_purpose::STANDARD
                    .decode(&secret)
                    .expect("base64")
                    .len(),
                30
            );
        }
        assert_ne!(access_key_id(), access_key_id());
    }
}
