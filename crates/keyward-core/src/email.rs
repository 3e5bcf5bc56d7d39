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
        if s.chars().any(|c| c.is_control() || is_format_char(c)) {
            return Err(EmailError("That email address contains hidden characters. Type it in again by hand."));
        }
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

/// Unicode category Cf (format characters: zero-width spaces and joiners, bidi controls,
/// the byte-order mark, tags…), invisible in an address yet part of it.
fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
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

    #[test]
    fn f23_invisible_and_bidi_control_characters_are_refused() {
        for bad in [
            "a\u{202e}@b.co",
            "a\u{200b}@b.co",
            "ad\u{200d}a@example.com",
            "\u{feff}ada@example.com",
            "ada@exam\u{2066}ple.com",
            "ada\u{00ad}@example.com",
            "ada\u{0}@example.com",
            "ada\u{7f}@example.com",
            "ada@example.com\u{e0041}",
        ] {
            let refused = Email::parse(bad).map_err(|e| e.0);
            assert_eq!(refused, Err("That email address contains hidden characters. Type it in again by hand."), "{bad:?}");
        }
        assert!(Email::parse("zoë@exämple.com").is_ok(), "visible non-ASCII letters stay allowed");
    }
}
