//! Scopes: a space-separated set (RFC 6749 §3.3). Unknown scopes are dropped, not refused,
//! as OIDC certification expects (`oidcc-scope-*`).

/// The scopes Keyward understands, in the order they are listed in discovery.
pub const SUPPORTED: &[&str] = &["openid", "profile", "email"];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parse a request's `scope`, keeping only supported scopes, without duplicates.
    pub fn parse_supported(raw: &str) -> Scopes {
        let mut out: Vec<String> = Vec::new();
        for s in raw.split(' ').filter(|s| !s.is_empty()) {
            if SUPPORTED.contains(&s) && !out.iter().any(|o| o == s) {
                out.push(s.to_owned());
            }
        }
        Scopes(out)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    pub fn as_string(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scopes_are_ignored() {
        let s = Scopes::parse_supported("openid  email phone openid address");
        assert_eq!(s.as_string(), "openid email");
        assert!(s.contains("email"));
        assert!(!s.contains("phone"));
    }
}
