//! CHECKLIST D7, by reading rather than by timing: every check of a typed or presented
//! secret in this crate goes through a constant-time comparison. Emailed codes are checked
//! with Argon2's `verify_password` against a salted hash (its output comparison is
//! constant-time, `phc::Output`'s `PartialEq` is `subtle::ct_eq`), so the time of a wrong
//! guess cannot depend on how many leading characters match; hashed tokens and browser
//! bindings are compared with `keyward_core::secret::constant_time_eq`. A unit test cannot
//! show timing; this one fails if a plain `==`/`!=` on a stored secret hash creeps in, or if
//! the code checks stop using `verify_password`.

/// The modules that check secrets.
const SOURCES: &[(&str, &str)] = &[
    ("account.rs", include_str!("account.rs")),
    ("argon2_gate.rs", include_str!("argon2_gate.rs")),
    ("code_check.rs", include_str!("code_check.rs")),
    ("consent.rs", include_str!("consent.rs")),
    ("link.rs", include_str!("link.rs")),
    ("login.rs", include_str!("login.rs")),
    ("logout.rs", include_str!("logout.rs")),
    ("oidc.rs", include_str!("oidc.rs")),
    ("passkeys.rs", include_str!("passkeys.rs")),
    ("reauth.rs", include_str!("reauth.rs")),
    ("reauth_passkey.rs", include_str!("reauth_passkey.rs")),
    ("tokens.rs", include_str!("tokens.rs")),
    ("users.rs", include_str!("users.rs")),
];

/// Columns that hold a hash of a secret somebody presents (keyward-store's schema).
const SECRET_HASHES: &[&str] = &["browser_hash", "code_hash", "link_hash", "token_hash", "jti_hash", "session_hash", "secret_hash"];

#[test]
fn d7_secret_hashes_are_never_compared_with_plain_equality() {
    for (file, source) in SOURCES {
        for (n, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let compares = code.contains(" == ") || code.contains(" != ");
            if let Some(field) = SECRET_HASHES.iter().find(|f| code.contains(*f)) {
                assert!(!compares, "{file}:{}: {field} compared with ==/!= instead of constant_time_eq: {line}", n + 1);
            }
        }
    }
}

#[test]
fn d7_emailed_codes_are_checked_with_argon2_verify_password() {
    let source = |name: &str| SOURCES.iter().find(|(f, _)| *f == name).map(|(_, s)| *s).unwrap_or_default();
    // Sign-in and re-authentication codes both go through the shared check…
    for file in ["login.rs", "reauth.rs"] {
        assert!(source(file).contains("self.code_matches(&slot, &challenge, typed)"), "{file}");
    }
    // …which verifies against the stored hash with Argon2, in a slot of the Argon2 gate.
    assert!(source("code_check.rs").contains("self.argon2_verify(slot, &normalized, &challenge.code_hash)"));
    assert!(source("argon2_gate.rs").contains("self.argon2.verify_password(code.as_bytes(), hash).is_ok()"));
}
