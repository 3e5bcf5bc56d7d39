//! Email addresses, parsed once at the edge. The address is trimmed and lower-cased
//! (providers treat addresses case-insensitively in practice, and one person must map to one
//! account).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(&'static str);

impl Email {
    pub fn parse(input: &str) -> Result<Email, EmailError> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            return Err(EmailError("Enter your email address."));
        }
        if s.len() > 254 {
            return Err(EmailError("That email address is too long."));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(EmailError("An email address needs an @, like name@example.com."));
        };
        let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"@".contains(c);
        if local.is_empty() || local.len() > 64 || local.chars().any(bad) {
            return Err(EmailError("The part before the @ doesn't look right."));
        }
        let labels_ok = domain.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
        if domain.is_empty() || !labels_ok || !(domain.contains('.') || domain == "localhost") {
            return Err(EmailError("The part after the @ doesn't look like a domain."));
        }
        Ok(Email(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(Email::parse("  Ada@Example.COM ").map(|e| e.0), Ok("ada@example.com".into()));
        assert_eq!(Email::parse("a+tag@sub.example.org").map(|e| e.domain().to_owned()), Ok("sub.example.org".into()));
    }

    #[test]
    fn refuses_malformed() {
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "ada@-x.com", "ada@exa mple.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
