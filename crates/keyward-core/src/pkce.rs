//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` gives no protection against a
//! stolen authorization request and RFC 9700 §2.1.1 says not to use it.

use crate::secret::{constant_time_eq, sha256_b64url};

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// RFC 7636 §4.1: 43–128 unreserved characters.
pub fn is_valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.chars().all(is_unreserved)
}

/// An S256 challenge is base64url(SHA-256) without padding: exactly 43 characters.
pub fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// RFC 7636 §4.6.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_valid_verifier(verifier) && constant_time_eq(&sha256_b64url(verifier.as_bytes()), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently with Python's hashlib and base64.urlsafe_b64encode.
    const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "ngF5GsXcbwljx6u133FFr3Xht9xooA_DuaX_3QwODtc";

    #[test]
    fn b8_s256_verifier_matches_only_its_challenge() {
        assert!(verify_s256(VERIFIER, CHALLENGE));
        assert!(!verify_s256("dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXK", CHALLENGE));
    }

    #[test]
    fn b10_verifier_format() {
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        assert!(!is_valid_verifier(&format!("{}+", "a".repeat(43))));
        assert!(is_valid_s256_challenge(CHALLENGE));
        assert!(!is_valid_s256_challenge("short"));
    }
}
