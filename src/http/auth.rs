//! API keys for `/v1`. Keys are trimmed when configured (so `--api-key "k1, k2"` accepts `k2`)
//! and kept only as sha256 digests; a presented key is hashed and compared with
//! `subtle`'s constant-time equality, so neither its bytes nor its length leak through timing.
//! The `Bearer` scheme is matched case-insensitively, as RFC 7235 says.

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorKind};

/// The accepted keys, as digests.
pub struct ApiKeys(Vec<[u8; 32]>);

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Trims each key and drops empty ones.
    pub fn new(keys: &[String]) -> Self {
        Self(
            keys.iter()
                .map(|k| k.trim())
                .filter(|k| !k.is_empty())
                .map(digest)
                .collect(),
        )
    }

    /// No keys: `/v1` is open.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `presented` is one of the keys. Every key is compared, match or not.
    pub fn accepts(&self, presented: &str) -> bool {
        let d = digest(presented.trim());
        self.0
            .iter()
            .fold(subtle::Choice::from(0), |acc, k| acc | k.ct_eq(&d))
            .into()
    }
}

impl ApiKeys {
    /// Checks a request's `Authorization: Bearer` header against these keys: `missing` is the
    /// 401's message without a Bearer token, `wrong` with one that is not a key.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        missing: &str,
        wrong: &str,
    ) -> Result<(), ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        match presented {
            Some(key) if self.accepts(key) => Ok(()),
            Some(_) => Err(ApiError::new(ErrorKind::Unauthorized, wrong)),
            None => Err(ApiError::new(ErrorKind::Unauthorized, missing)),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme in any case).
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_compared_whole() {
        let keys = ApiKeys::new(&["k1".into(), " k2".into(), "  ".into()]);
        assert!(keys.accepts("k1") && keys.accepts("k2"));
        assert!(!keys.accepts("k") && !keys.accepts("k22") && !keys.accepts(""));
        assert!(ApiKeys::new(&[" ".into()]).is_empty());
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
