//! Who is calling: agents logged in with a session cookie (plus a CSRF token for
//! state-changing requests) and integrations with API tokens. Passwords are argon2id with the
//! crate's defaults, which are OWASP's recommendation (19 MiB, 2 passes, 1 lane).

mod limiter;
mod principal;
mod scope;

pub use limiter::LoginLimiter;
pub use principal::{CSRF_HEADER, Principal, SESSION_COOKIE, session_cookie};
pub use scope::Scope;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be 8 to 1024 characters")]
    Length,
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// An argon2id PHC string for `password`. Slow on purpose: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if !(8..=1024).contains(&password.chars().count()) {
        return Err(PasswordError::Length);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored `hash`. Slow on purpose: call it off the async threads.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), hash).is_ok()
}

/// What is stored for a bearer secret (a session cookie or an API token): its SHA-256.
/// The secrets are 256 random bits, so a fast hash is enough.
pub fn secret_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret with a readable prefix (`sbs_` for sessions, `sbt_` for API tokens).
pub fn new_secret(prefix: &str) -> String {
    format!("{prefix}{}", crate::store::random_token(32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsE", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(matches!(hash_password("short"), Err(PasswordError::Length)));
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let (a, b) = (new_secret("sbt_"), new_secret("sbt_"));
        assert!(a.starts_with("sbt_") && a.len() > 40 && a != b);
        assert_eq!(secret_digest(&a).len(), 64);
    }
}
