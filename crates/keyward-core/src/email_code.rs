//! The 8-character email sign-in code (DESIGN.md §4): Crockford base32, 40 bits from a
//! CSPRNG, shown as `XXXX-XXXX`, accepted with or without the dash, in any case, with the
//! look-alike letters Crockford maps (I/L → 1, O → 0).

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
pub const CODE_LEN: usize = 8;
/// Wrong tries after which a code is dead (CHECKLIST D4).
pub const MAX_ATTEMPTS: i32 = 5;

/// A new code in canonical form (8 characters, no dash).
pub fn generate(rng: &mut impl RngCore) -> String {
    generate_len(rng, CODE_LEN)
}

/// `len` characters of the code alphabet, 5 bits each.
pub(crate) fn generate_len(rng: &mut impl RngCore, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rng.fill_bytes(&mut bytes);
    // 256 is a multiple of 32, so `b % 32` is unbiased.
    bytes.iter().map(|b| ALPHABET[(*b % 32) as usize] as char).collect()
}

/// `ABCDEFGH` → `ABCD-EFGH`, for people.
pub fn display(code: &str) -> String {
    if code.len() == CODE_LEN { format!("{}-{}", &code[..4], &code[4..]) } else { code.to_owned() }
}

/// What a person typed → canonical form, or `None` when it cannot be a code at all.
pub fn normalize(input: &str) -> Option<String> {
    normalize_len(input, CODE_LEN)
}

/// Like [`normalize`] for a code of `len` characters.
pub(crate) fn normalize_len(input: &str, len: usize) -> Option<String> {
    let mut out = String::with_capacity(len);
    for ch in input.chars() {
        let c = match ch.to_ascii_uppercase() {
            '-' | ' ' | '\u{a0}' | '\t' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        out.push(c);
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn d1_codes_have_forty_bits_from_an_unambiguous_alphabet() {
        let mut rng = rand::rng();
        let codes: HashSet<String> = (0..2000).map(|_| generate(&mut rng)).collect();
        assert_eq!(codes.len(), 2000, "codes repeat");
        for c in &codes {
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)));
            assert!(!c.contains(['I', 'L', 'O', 'U']));
        }
    }

    #[test]
    fn codes_are_accepted_with_or_without_dash_in_any_case() {
        assert_eq!(normalize("ABCD-EFGH").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize("abcdefgh").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize(" abcd efgh ").as_deref(), Some("ABCDEFGH"));
        assert_eq!(normalize("o1l0-iiii").as_deref(), Some("01101111"));
        assert_eq!(display("ABCDEFGH"), "ABCD-EFGH");
    }

    #[test]
    fn malformed_codes_are_refused() {
        assert_eq!(normalize("ABCD-EFG"), None);
        assert_eq!(normalize("ABCD-EFGHJ"), None);
        assert_eq!(normalize("ABCD-EFG!"), None);
        assert_eq!(normalize("ABCD-EFGU"), None);
        assert_eq!(normalize("ÄBCDEFGH"), None);
        assert_eq!(normalize(""), None);
    }
}
