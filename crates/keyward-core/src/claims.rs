//! Token contents: the ID token (OIDC Core §2, §5.1), the JWT access token (RFC 9068) and
//! the lifetimes that bound them.

use serde::{Deserialize, Serialize};

/// Authorization codes live 60 s (DESIGN.md §3; RFC 6749 §4.1.2 recommends ≤ 10 minutes).
pub const AUTHORIZATION_CODE_LIFETIME_SECS: i64 = 60;

/// True once `now` has reached `expires_at` (both Unix seconds): the last valid second is
/// `expires_at - 1`.
pub fn is_expired(expires_at: i64, now: i64) -> bool {
    now >= expires_at
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub amr: Vec<String>,
    /// `phr`/`phrh` after a passkey sign-in (OpenID EAP ACR values); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    pub azp: String,
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// Claims released by scope (OIDC Core §5.4): `email` → email, email_verified; `profile` → name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProfileClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl ProfileClaims {
    pub fn for_scope(scope: &crate::scope::Scopes, email: &str, email_verified: bool, name: Option<&str>) -> Self {
        let with_email = scope.contains("email");
        ProfileClaims {
            email: with_email.then(|| email.to_owned()),
            email_verified: with_email.then_some(email_verified),
            name: if scope.contains("profile") { name.map(str::to_owned) } else { None },
        }
    }
}

/// RFC 9068 §2.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    pub auth_time: i64,
    /// The grant (authorization code) the token came from, so a replayed code revokes it.
    pub gid: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::Scopes;

    #[test]
    fn b12_code_expiry_rule() {
        let issued = 1_000;
        let expires = issued + AUTHORIZATION_CODE_LIFETIME_SECS;
        assert!(!is_expired(expires, issued));
        assert!(!is_expired(expires, expires - 1));
        assert!(is_expired(expires, expires));
        const { assert!(AUTHORIZATION_CODE_LIFETIME_SECS <= 600) };
    }

    #[test]
    fn claims_follow_scope() {
        let both = ProfileClaims::for_scope(&Scopes::parse_supported("openid email profile"), "a@x.io", true, Some("Ada"));
        assert_eq!(both.email.as_deref(), Some("a@x.io"));
        assert_eq!(both.email_verified, Some(true));
        assert_eq!(both.name.as_deref(), Some("Ada"));
        let none = ProfileClaims::for_scope(&Scopes::parse_supported("openid"), "a@x.io", true, Some("Ada"));
        assert_eq!(none, ProfileClaims::default());
    }
}
