//! Relying-party clients as registered in the config file, and the redirect URI rule:
//! exact string match (RFC 9700 §4.1.3), except that a registered loopback IP URI may
//! come back on any port (RFC 8252 §7.3).

use crate::secret::{constant_time_eq, hash_secret};
use secrecy::{ExposeSecret, SecretString};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    #[default]
    Rs256,
    Es256,
    EdDsa,
}

impl SigningAlg {
    /// Every algorithm Keyward keeps a signing key for.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<SigningAlg> {
        match s {
            "RS256" => Some(SigningAlg::Rs256),
            "ES256" => Some(SigningAlg::Es256),
            "EdDSA" => Some(SigningAlg::EdDsa),
            _ => None,
        }
    }
}

/// The grants a client may use at the token endpoint (RFC 6749 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<GrantType> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            "client_credentials" => Some(GrantType::ClientCredentials),
            _ => None,
        }
    }
}

/// When a code exchange also returns a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshPolicy {
    /// Only when the request's scope has `offline_access` (OIDC Core §11).
    #[default]
    OfflineAccess,
    /// With every code exchange.
    Always,
    /// Never.
    Never,
}

/// Token lifetimes in seconds, each overriding the `[tokens]` default when set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetimes {
    pub access_token: Option<i64>,
    pub id_token: Option<i64>,
    pub refresh_token_idle: Option<i64>,
    pub refresh_token_max: Option<i64>,
}

/// Where a `private_key_jwt` client's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKeys {
    /// A JWK Set written in the config (JSON text).
    Inline(String),
    /// A JWK Set fetched (and cached) from this https URL. Only from public addresses unless
    /// `allow_private` (`allow_private_jwks_uri = true`, for a client on the same host or
    /// network, e.g. in development).
    Uri { uri: String, allow_private: bool },
}

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientKind {
    /// Holds a secret; the config stores base64url(SHA-256(secret)) values (several, for
    /// rollover), kept as secrets: a hash of a weak secret could be guessed offline.
    Confidential { secret_hashes: Vec<SecretString> },
    /// Signs a client assertion with its own private key (`private_key_jwt`, RFC 7523).
    PrivateKeyJwt { keys: ClientKeys },
    /// Cannot keep a secret (SPA, native): authenticates with PKCE alone.
    Public,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// PKCE is required for public clients always, and for confidential ones unless this is off.
    pub require_pkce: bool,
    pub id_token_alg: SigningAlg,
    /// Trusted apps skip the consent page.
    pub first_party: bool,
    /// Where RP-initiated logout may return the browser (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Where back-channel logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub refresh_tokens: RefreshPolicy,
    /// Scopes this client may be granted (None: every scope Keyward supports). Names
    /// outside OIDC's are the client's own API scopes (for client_credentials).
    pub scopes: Option<Vec<String>>,
    pub lifetimes: Lifetimes,
}

impl Default for Client {
    fn default() -> Self {
        Client {
            id: String::new(),
            name: String::new(),
            kind: ClientKind::Public,
            redirect_uris: Vec::new(),
            require_pkce: true,
            id_token_alg: SigningAlg::Rs256,
            first_party: false,
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            refresh_tokens: RefreshPolicy::OfflineAccess,
            scopes: None,
            lifetimes: Lifetimes::default(),
        }
    }
}

impl Client {
    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// The requested scopes this client may have, in request order, without repeats:
    /// OIDC scopes Keyward supports plus the client's own, within its allowed list.
    pub fn permitted_scope(&self, requested: &str) -> crate::scope::Scopes {
        crate::scope::Scopes::parse_with(requested, |s| match &self.scopes {
            Some(allowed) => allowed.iter().any(|a| a == s),
            None => crate::scope::SUPPORTED.contains(&s),
        })
    }

    /// Whether a code exchange with `scope` also returns a refresh token.
    pub fn issues_refresh_token(&self, scope: &crate::scope::Scopes) -> bool {
        self.allows_grant(GrantType::RefreshToken)
            && match self.refresh_tokens {
                RefreshPolicy::Always => true,
                RefreshPolicy::OfflineAccess => scope.contains("offline_access"),
                RefreshPolicy::Never => false,
            }
    }

    /// The registered post-logout URI equal to `requested`, if any (exact match only).
    pub fn match_post_logout_redirect_uri(&self, requested: &str) -> Option<&str> {
        self.post_logout_redirect_uris.iter().find(|r| r.as_str() == requested).map(|r| r.as_str())
    }

    pub fn pkce_required(&self) -> bool {
        self.is_public() || self.require_pkce
    }

    /// Checks a presented secret against every stored hash without an early exit.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.kind {
            ClientKind::Public | ClientKind::PrivateKeyJwt { .. } => false,
            ClientKind::Confidential { secret_hashes } => {
                let presented = hash_secret(presented);
                secret_hashes.iter().fold(false, |ok, h| constant_time_eq(h.expose_secret(), &presented) | ok)
            }
        }
    }

    /// The URI to answer on when the request's `redirect_uri` matches a registration, if any:
    /// exact string comparison (RFC 9700 §2.1), loopback ports aside (RFC 8252 §7.3). What is
    /// returned is always built from the registered string (with the request's port on
    /// loopback), never the request's own bytes.
    pub fn match_redirect_uri(&self, requested: &str) -> Option<String> {
        self.redirect_uris.iter().find_map(|r| if r.as_str() == requested { Some(r.clone()) } else { loopback_port_variant(r, requested) })
    }
}

/// RFC 8252 §7.3: for `http://127.0.0.1` and `http://[::1]` the port may differ; nothing else.
/// Compared as strings: `requested` must be the registered string with only the port (digits,
/// or none) changed. Returns the registered string with the requested port.
fn loopback_port_variant(registered: &str, requested: &str) -> Option<String> {
    let host = ["http://127.0.0.1", "http://[::1]"].into_iter().find(|h| registered.starts_with(h))?;
    let split = |uri: &str| -> Option<(String, String)> {
        let after = uri.strip_prefix(host)?;
        let (port, rest) = match after.strip_prefix(':') {
            Some(p) => {
                let digits = p.bytes().take_while(u8::is_ascii_digit).count();
                let (port, rest) = p.split_at(digits);
                if port.is_empty() || port.starts_with('0') || port.parse::<u16>().is_err() {
                    return None;
                }
                (format!(":{port}"), rest)
            }
            None => (String::new(), after),
        };
        // The host must end here: `/`, `?` or the end (not `http://127.0.0.1.evil.example`).
        (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')).then(|| (port, rest.to_owned()))
    };
    let (_, reg_rest) = split(registered)?;
    let (req_port, req_rest) = split(requested)?;
    (reg_rest == req_rest).then(|| format!("{host}{req_port}{reg_rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            id: "c".into(),
            name: "C".into(),
            kind: ClientKind::Confidential { secret_hashes: vec![hash_secret("s").into()] },
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            first_party: true,
            ..Client::default()
        }
    }

    #[test]
    fn b1_exact_redirect_uri_matching() {
        let c = client(&["https://app.example/cb"]);
        assert!(c.match_redirect_uri("https://app.example/cb").is_some());
        for bad in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://app.example/cb2",
            "https://APP.example/cb",
            "https://app.example:444/cb",
            "https://app.example@evil.example/cb",
            "https://app.example/cb#frag",
            "http://app.example/cb",
            "",
        ] {
            assert!(c.match_redirect_uri(bad).is_none(), "{bad} matched");
        }
    }

    #[test]
    fn loopback_ip_may_vary_the_port_only() {
        let c = client(&["http://127.0.0.1/cb"]);
        assert!(c.match_redirect_uri("http://127.0.0.1:53111/cb").is_some());
        assert!(c.match_redirect_uri("http://127.0.0.1:53111/cb?").is_none());
        assert!(c.match_redirect_uri("http://127.0.0.1:53111/other").is_none());
        assert!(c.match_redirect_uri("http://127.0.0.1:53111/cb?x").is_none());
        let named = client(&["http://localhost:3000/cb"]);
        assert!(named.match_redirect_uri("http://localhost:3001/cb").is_none());
    }

    #[test]
    fn f18_redirect_uris_are_compared_as_strings_and_only_the_registered_one_is_used() {
        let c = client(&["http://127.0.0.1:3000/callback", "http://[::1]/cb"]);
        assert_eq!(c.match_redirect_uri("http://127.0.0.1:3000/callback").as_deref(), Some("http://127.0.0.1:3000/callback"));
        assert_eq!(c.match_redirect_uri("http://127.0.0.1:51004/callback").as_deref(), Some("http://127.0.0.1:51004/callback"));
        assert_eq!(c.match_redirect_uri("http://127.0.0.1/callback").as_deref(), Some("http://127.0.0.1/callback"));
        assert_eq!(c.match_redirect_uri("http://[::1]:8080/cb").as_deref(), Some("http://[::1]:8080/cb"));
        for bad in [
            "http://0x7f.1:3000\\callback",
            "http://127.0.0.1:3000\\callback",
            "http://127.0.0.1:3000/callback\r\nSet-Cookie: x=1",
            "http://127.0.0.1:3000/callback\n",
            "http://127.0.0.1:3000/callback\0",
            "http://127.0.0.1:3000/callback ",
            "http://127.0.0.1:3000/%63allback",
            "http://127.0.0.1:3000/./callback",
            "http://127.0.0.1:3000/callback#x",
            "http://127.0.0.1:03000/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1.evil.example:3000/callback",
            "http://user@127.0.0.1:3000/callback",
            "http://2130706433:3000/callback",
            "HTTP://127.0.0.1:3000/callback",
            "http://[0:0:0:0:0:0:0:1]/cb",
            "http://[::1]:80/cb/",
        ] {
            assert_eq!(c.match_redirect_uri(bad), None, "{bad:?} matched");
        }
    }

    #[test]
    fn secrets_are_checked_against_hashes() {
        let c = client(&[]);
        assert!(c.secret_matches("s"));
        assert!(!c.secret_matches("S"));
        let mut p = c.clone();
        p.kind = ClientKind::Public;
        assert!(!p.secret_matches("s"));
    }
}
