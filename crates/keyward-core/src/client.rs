//! Relying-party clients as registered in the config file, and the redirect URI rule:
//! exact string match (RFC 9700 §4.1.3), except that a registered loopback IP URI may
//! come back on any port (RFC 8252 §7.3).

use crate::secret::{constant_time_eq, hash_secret};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    Rs256,
    Es256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<SigningAlg> {
        match s {
            "RS256" => Some(SigningAlg::Rs256),
            "ES256" => Some(SigningAlg::Es256),
            _ => None,
        }
    }
}

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientKind {
    /// Holds a secret; the config stores base64url(SHA-256(secret)) values (several, for rollover).
    Confidential { secret_hashes: Vec<String> },
    /// Cannot keep a secret (SPA, native): authenticates with PKCE alone.
    Public,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    /// PKCE is required for public clients always, and for confidential ones unless this is off.
    pub require_pkce: bool,
    pub id_token_alg: SigningAlg,
    pub first_party: bool,
}

impl Client {
    pub fn is_public(&self) -> bool {
        matches!(self.kind, ClientKind::Public)
    }

    pub fn pkce_required(&self) -> bool {
        self.is_public() || self.require_pkce
    }

    /// Checks a presented secret against every stored hash without an early exit.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match &self.kind {
            ClientKind::Public => false,
            ClientKind::Confidential { secret_hashes } => {
                let presented = hash_secret(presented);
                secret_hashes.iter().fold(false, |ok, h| constant_time_eq(h, &presented) | ok)
            }
        }
    }

    /// The registered URI the request's `redirect_uri` matches, if any.
    pub fn match_redirect_uri(&self, requested: &str) -> Option<&str> {
        self.redirect_uris.iter().find(|r| r.as_str() == requested || loopback_port_variant(r, requested)).map(|r| r.as_str())
    }
}

/// RFC 8252 §7.3: for `http://127.0.0.1` and `http://[::1]` the port may differ; nothing else.
fn loopback_port_variant(registered: &str, requested: &str) -> bool {
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let loopback_ip = matches!(reg.host_str(), Some("127.0.0.1") | Some("[::1]"));
    loopback_ip
        && reg.scheme() == "http"
        && req.scheme() == "http"
        && reg.host_str() == req.host_str()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
        && req.username().is_empty()
        && req.password().is_none()
        // Only the port may change: the rest of the string must be the same once the port is removed.
        && strip_port(registered) == strip_port(requested)
}

fn strip_port(uri: &str) -> Option<String> {
    let mut u = Url::parse(uri).ok()?;
    u.set_port(None).ok()?;
    Some(u.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            id: "c".into(),
            name: "C".into(),
            kind: ClientKind::Confidential { secret_hashes: vec![hash_secret("s")] },
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            require_pkce: true,
            id_token_alg: SigningAlg::Rs256,
            first_party: true,
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
        assert!(c.match_redirect_uri("http://127.0.0.1:53111/other").is_none());
        assert!(c.match_redirect_uri("http://127.0.0.1:53111/cb?x").is_none());
        let named = client(&["http://localhost:3000/cb"]);
        assert!(named.match_redirect_uri("http://localhost:3001/cb").is_none());
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
