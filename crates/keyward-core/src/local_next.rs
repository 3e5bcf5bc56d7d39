//! Where a page may send the browser back to after an interruption (re-authentication's
//! `next`): only Keyward's own account pages, as a relative path, so the parameter can never
//! become an open redirector (RFC 9700 §4.11, CHECKLIST E8).

/// The longest `next` kept; anything longer is ignored.
pub const MAX_LEN: usize = 512;

/// Where to go when `next` is missing or refused.
pub const DEFAULT: &str = "/account";

/// `next` if it is a path of the account pages (`/account`, `/account?…`, `/account#…`,
/// `/account/…`) with nothing that could leave the origin or confuse a parser: no `//`, no
/// backslash, no `..`, no percent-encoding in the path, no whitespace or control characters.
pub fn parse(next: &str) -> Option<&str> {
    let rest = next.strip_prefix(DEFAULT)?;
    let boundary = rest.is_empty() || rest.starts_with(['?', '#', '/']);
    // No percent-encoding in the path: browsers resolve `%2e%2e` as `..`, which would leave the
    // account pages (still on this origin, but not where `next` may point).
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let clean = !next.contains("//")
        && !next.contains('\\')
        && !next.contains("..")
        && !path.contains('%')
        && !next.chars().any(|c| c.is_whitespace() || c.is_control());
    (boundary && clean && next.len() <= MAX_LEN).then_some(next)
}

/// `next` with `key=value` added to its query (before any fragment).
pub fn with_query(next: &str, key: &str, value: &str) -> String {
    let (path, fragment) = match next.find('#') {
        Some(i) => next.split_at(i),
        None => (next, ""),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}{key}={value}{fragment}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f4_next_is_an_account_path_and_never_leaves_the_origin() {
        for ok in ["/account", "/account?resume=add-passkey", "/account#recovery", "/account/confirm"] {
            assert_eq!(parse(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "/",
            "https://evil.example/account",
            "//evil.example/account",
            "/account//evil.example",
            "/accounts",
            "/account\\evil",
            "/account/../login",
            "/account/%2e%2e/end_session",
            "/account/%2E%2E/login",
            "/account/.%2e/login",
            "/account%2f..%2flogin",
            "/account?x=1 2",
            "/account\r\nSet-Cookie: x",
            "account",
            "/login",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(parse(&format!("/account?{}", "a".repeat(MAX_LEN))), None);
    }

    #[test]
    fn with_query_keeps_the_fragment_last() {
        assert_eq!(with_query("/account", "done", "confirmed"), "/account?done=confirmed");
        assert_eq!(with_query("/account?resume=add-passkey", "done", "confirmed"), "/account?resume=add-passkey&done=confirmed");
        assert_eq!(with_query("/account#recovery", "done", "confirmed"), "/account?done=confirmed#recovery");
    }
}
