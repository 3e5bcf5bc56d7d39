//! Scopes: a space-separated set (RFC 6749 §3.3). Unknown scopes are dropped, not refused,
//! as OIDC certification expects (`oidcc-scope-*`).

/// The scopes Keyward understands, in the order they are listed in discovery.
pub const SUPPORTED: &[&str] = &["openid", "profile", "email", "offline_access"];

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parse a request's `scope`, keeping only supported scopes, without duplicates.
    pub fn parse_supported(raw: &str) -> Scopes {
        Self::parse_with(raw, |s| SUPPORTED.contains(&s))
    }

    /// Parse `raw`, keeping the scopes `keep` accepts, without duplicates.
    pub fn parse_with(raw: &str, keep: impl Fn(&str) -> bool) -> Scopes {
        let mut out: Vec<String> = Vec::new();
        for s in raw.split(' ').filter(|s| !s.is_empty()) {
            if s.len() <= 128 && keep(s) && !out.iter().any(|o| o == s) {
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

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// True when every scope here is also in `other`.
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oidcc_scope_unknown_scopes_are_ignored() {
        let s = Scopes::parse_supported("openid  email phone openid address");
        assert_eq!(s.as_string(), "openid email");
        assert!(s.contains("email"));
        assert!(!s.contains("phone"));
    }
}
