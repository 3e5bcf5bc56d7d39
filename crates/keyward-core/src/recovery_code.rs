//! Recovery codes: ten per account, 16 characters of the email-code alphabet each (80
//! random bits, so SHA-256 at rest is enough: DESIGN.md §3), shown as `XXXX-XXXX-XXXX-XXXX`
//! and accepted with or without dashes, in any case, with I/L/O read as 1/1/0.

use crate::email_code::{generate_len, normalize_len};
use rand::RngCore;

pub const RECOVERY_CODE_LEN: usize = 16;
pub const RECOVERY_CODES_PER_SET: usize = 10;

/// A new set of codes in canonical form.
pub fn generate_set(rng: &mut impl RngCore) -> Vec<String> {
    (0..RECOVERY_CODES_PER_SET).map(|_| generate_len(rng, RECOVERY_CODE_LEN)).collect()
}

/// `ABCDEFGHJKMNPQRS` → `ABCD-EFGH-JKMN-PQRS`.
pub fn display(code: &str) -> String {
    code.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
}

/// What a person typed → canonical form, or `None` when it cannot be a recovery code.
pub fn normalize(input: &str) -> Option<String> {
    normalize_len(input, RECOVERY_CODE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_set_is_ten_distinct_codes_of_eighty_bits() {
        let set = generate_set(&mut rand::rng());
        assert_eq!(set.len(), 10);
        assert_eq!(set.iter().collect::<HashSet<_>>().len(), 10);
        assert!(set.iter().all(|c| c.len() == 16 && normalize(c).as_deref() == Some(c.as_str())));
    }

    #[test]
    fn codes_are_read_as_people_type_them() {
        let code = "ABCDEFGH0123JKMN";
        assert_eq!(display(code), "ABCD-EFGH-0123-JKMN");
        assert_eq!(normalize("abcd-efgh-o123-jkmn").as_deref(), Some(code));
        assert_eq!(normalize(" ABCD EFGH 0123 JKMN ").as_deref(), Some(code));
        assert_eq!(normalize("ABCD-EFGH-0123"), None, "too short");
        assert_eq!(normalize("ABCD-EFGH-0123-JKMN-1"), None, "too long");
        assert_eq!(normalize("ABCD-EFGH-0123-JKM!"), None);
    }
}
