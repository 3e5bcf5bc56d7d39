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
    /// The browser session (absent for tokens not tied to one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
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

/// The scope that carries `claim` (OIDC Core §5.4): a claim asked for by name with the
/// `claims` parameter is released only where its scope is allowed and consented to.
pub fn carrying_scope(claim: &str) -> Option<&'static str> {
    match claim {
        "email" | "email_verified" => Some("email"),
        "name" => Some("profile"),
        _ => None,
    }
}

impl ProfileClaims {
    pub fn for_scope(scope: &crate::scope::Scopes, email: &str, email_verified: bool, name: Option<&str>) -> Self {
        Self::release(scope, "", "", &crate::scope::Scopes::default(), email, email_verified, name)
    }

    /// Claims by scope, plus those asked for by name for `place` (`id_token` or `userinfo`)
    /// with the `claims` parameter (`requested` as stored on the grant) whose carrying scope
    /// is in `allowed` (the client's permitted scopes; consent to them was checked before the
    /// code was issued).
    pub fn release(
        scope: &crate::scope::Scopes,
        requested: &str,
        place: &str,
        allowed: &crate::scope::Scopes,
        email: &str,
        email_verified: bool,
        name: Option<&str>,
    ) -> Self {
        let asked = |claim: &str| {
            carrying_scope(claim).is_some_and(|s| allowed.contains(s))
                && requested.split(' ').any(|w| w.strip_prefix(place).and_then(|r| r.strip_prefix(':')) == Some(claim))
        };
        let with_email = scope.contains("email") || asked("email");
        ProfileClaims {
            email: with_email.then(|| email.to_owned()),
            email_verified: (with_email || asked("email_verified")).then_some(email_verified),
            name: if scope.contains("profile") || asked("name") { name.map(str::to_owned) } else { None },
        }
    }
}

/// The `sid` (OIDC Front/Back-Channel Logout §2.1) of a browser session: derived from the
/// session's stored hash, so it names the session without revealing anything that opens it.
pub fn sid_for(session_hash: &str) -> String {
    let full = crate::secret::sha256_b64url(format!("keyward-sid:{session_hash}").as_bytes());
    full[..22].to_owned()
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
    /// Absent for client_credentials tokens (no person signed in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The grant the token came from, so revoking the grant (code replay, refresh-token
    /// reuse, logout) ends the token too.
    pub gid: String,
}

/// The logout token of OpenID Back-Channel Logout 1.0 §2.4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    pub sid: String,
    pub events: serde_json::Value,
}

/// The `events` member of a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

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

    #[test]
    fn f2_claims_parameter_releases_only_claims_whose_scope_is_allowed() {
        let openid = Scopes::parse_supported("openid");
        let asked = "id_token:email id_token:name userinfo:email_verified";
        let only_openid = Scopes::parse_supported("openid");
        let none = ProfileClaims::release(&openid, asked, "id_token", &only_openid, "a@x.io", true, Some("Ada"));
        assert_eq!(none, ProfileClaims::default(), "a claim whose scope the client lacks is never released");
        let with_email = Scopes::parse_supported("openid email");
        let id = ProfileClaims::release(&openid, asked, "id_token", &with_email, "a@x.io", true, Some("Ada"));
        assert_eq!((id.email.as_deref(), id.name), (Some("a@x.io"), None));
        let info = ProfileClaims::release(&openid, asked, "userinfo", &with_email, "a@x.io", true, Some("Ada"));
        assert_eq!((info.email, info.email_verified), (None, Some(true)));
    }
}
