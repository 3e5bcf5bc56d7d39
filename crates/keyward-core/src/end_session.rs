//! The end-session request rules of OpenID RP-Initiated Logout 1.0 (§2 the request, §3 the
//! redirect after logout), as pure checks: which app is asking, where the browser may be
//! sent back, and when the person must confirm. Verifying the `id_token_hint`'s signature
//! needs the signing keys and stays in the service; the handler translates HTTP.

use crate::client::Client;
use std::fmt;

/// The parameters of §2 that may appear at most once.
pub const SINGLE_VALUED: [&str; 4] = ["id_token_hint", "client_id", "post_logout_redirect_uri", "state"];

/// Why an end-session request is refused. Each is shown to the person and never redirected
/// (the return address is not trusted until the request passes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A §2 parameter is repeated.
    Repeated(&'static str),
    /// The `id_token_hint` is longer than any ID token Keyward issues.
    HintTooLong,
    /// The `id_token_hint` is not an ID token Keyward signed.
    HintNotOurs,
    /// `client_id` and the hint's `aud` disagree (§2).
    ClientMismatch,
    /// The named client is not registered.
    UnknownClient,
    /// A `post_logout_redirect_uri` without a way to tell the client (§3).
    ReturnWithoutClient,
    /// A `post_logout_redirect_uri` the client did not register (§3).
    UnregisteredReturn,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Repeated(name) => write!(f, "The {name} parameter appears twice."),
            Refusal::HintTooLong => f.write_str("The app sent an ID token that is too long."),
            Refusal::HintNotOurs => f.write_str("The app sent an ID token that this service did not issue."),
            Refusal::ClientMismatch => f.write_str("The app named itself differently than its ID token does."),
            Refusal::UnknownClient => f.write_str("The app that sent you here is not registered."),
            Refusal::ReturnWithoutClient => f.write_str("The app asked to send you back but did not say who it is."),
            Refusal::UnregisteredReturn => f.write_str("The app asked to send you back to an address that is not registered for it."),
        }
    }
}

/// §2: `id_token_hint`, `client_id`, `post_logout_redirect_uri` and `state` at most once each
/// (RFC 6749 §3.1: request parameters must not be included more than once).
pub fn check_single_valued(params: &[(String, String)]) -> Result<(), Refusal> {
    for name in SINGLE_VALUED {
        if params.iter().filter(|(k, _)| k == name).count() > 1 {
            return Err(Refusal::Repeated(name));
        }
    }
    Ok(())
}

/// A hint longer than any ID token Keyward issues is refused before its signature is checked.
pub fn check_hint_length(hint: &str) -> Result<(), Refusal> {
    if hint.len() > crate::authorize::MAX_ID_TOKEN_HINT_LEN {
        return Err(Refusal::HintTooLong);
    }
    Ok(())
}

/// §2: the client is `client_id` or the verified hint's `aud`; when both are given they must
/// name the same client.
pub fn client_id(client_id: Option<String>, hint_aud: Option<String>) -> Result<Option<String>, Refusal> {
    match (client_id, hint_aud) {
        (Some(a), Some(b)) if a != b => Err(Refusal::ClientMismatch),
        (a, b) => Ok(a.or(b)),
    }
}

/// The registered client a named `client_id` stands for (`lookup` reads the configuration).
pub fn registered_client<C>(client_id: Option<&str>, lookup: impl FnOnce(&str) -> Option<C>) -> Result<Option<C>, Refusal> {
    match client_id {
        None => Ok(None),
        Some(id) => lookup(id).map(Some).ok_or(Refusal::UnknownClient),
    }
}

/// §3: the browser is only sent back to a `post_logout_redirect_uri` registered for the
/// client the request identifies (by `client_id` or `id_token_hint`), compared exactly.
pub fn post_logout_redirect_uri(requested: Option<&str>, client: Option<&Client>) -> Result<Option<String>, Refusal> {
    match (requested, client) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(Refusal::ReturnWithoutClient),
        (Some(uri), Some(c)) => c.match_post_logout_redirect_uri(uri).map(|u| Some(u.to_owned())).ok_or(Refusal::UnregisteredReturn),
    }
}

/// Who a verified hint names, and who is signed in in this browser.
#[derive(Debug, Clone, Copy)]
pub struct Party<'a> {
    pub sid: Option<&'a str>,
    pub sub: &'a str,
}

/// §2: a valid hint stands for the person's intent to log out when it names the current
/// session (its `sid`) or person (`sub`); with no session to end, any valid hint does.
pub fn hint_names_session(hint: Option<Party<'_>>, session: Option<Party<'_>>) -> bool {
    match (hint, session) {
        (Some(h), Some(s)) => (h.sid.is_some() && h.sid == s.sid) || h.sub == s.sub,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// §2: without a hint naming this session, the OP asks the person before ending it (the ask
/// is answered by a CSRF-protected `confirmed` POST).
pub fn needs_confirmation(signed_in: bool, confirmed: bool, hint_names_session: bool) -> bool {
    signed_in && !confirmed && !hint_names_session
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn client() -> Client {
        Client { id: "app".into(), post_logout_redirect_uris: vec!["https://app.example/bye".into()], ..Client::default() }
    }

    #[test]
    fn each_parameter_at_most_once() {
        assert_eq!(check_single_valued(&pairs(&[("state", "a"), ("client_id", "app"), ("other", "1"), ("other", "2")])), Ok(()));
        for name in SINGLE_VALUED {
            let twice = pairs(&[(name, "a"), (name, "b")]);
            assert_eq!(check_single_valued(&twice), Err(Refusal::Repeated(name)));
        }
        assert_eq!(Refusal::Repeated("state").to_string(), "The state parameter appears twice.");
    }

    #[test]
    fn overlong_hint_is_refused() {
        let max = crate::authorize::MAX_ID_TOKEN_HINT_LEN;
        assert_eq!(check_hint_length(&"a".repeat(max)), Ok(()));
        assert_eq!(check_hint_length(&"a".repeat(max + 1)), Err(Refusal::HintTooLong));
    }

    #[test]
    fn client_id_and_hint_audience_must_agree() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(client_id(s("app"), s("app")), Ok(s("app")));
        assert_eq!(client_id(s("app"), None), Ok(s("app")));
        assert_eq!(client_id(None, s("app")), Ok(s("app")));
        assert_eq!(client_id(None, None), Ok(None));
        assert_eq!(client_id(s("app"), s("other")), Err(Refusal::ClientMismatch));
    }

    #[test]
    fn the_named_client_must_be_registered() {
        let lookup = |id: &str| (id == "app").then(client);
        assert_eq!(registered_client(None, lookup).map(|c| c.is_none()), Ok(true));
        assert_eq!(registered_client(Some("app"), lookup).map(|c| c.map(|c| c.id)), Ok(Some("app".to_owned())));
        assert_eq!(registered_client(Some("ghost"), lookup).map(|_| ()), Err(Refusal::UnknownClient));
    }

    #[test]
    fn return_address_must_be_registered_for_the_client() {
        let c = client();
        assert_eq!(post_logout_redirect_uri(None, None), Ok(None));
        assert_eq!(post_logout_redirect_uri(None, Some(&c)), Ok(None));
        assert_eq!(post_logout_redirect_uri(Some("https://app.example/bye"), Some(&c)), Ok(Some("https://app.example/bye".into())));
        assert_eq!(post_logout_redirect_uri(Some("https://app.example/bye"), None), Err(Refusal::ReturnWithoutClient));
        for wrong in ["https://app.example/bye/", "https://evil.example/bye", "https://app.example/bye?x=1"] {
            assert_eq!(post_logout_redirect_uri(Some(wrong), Some(&c)), Err(Refusal::UnregisteredReturn), "{wrong}");
        }
    }

    #[test]
    fn a_hint_names_the_session_by_sid_or_subject() {
        let session = Party { sid: Some("s1"), sub: "u1" };
        assert!(hint_names_session(Some(Party { sid: Some("s1"), sub: "u2" }), Some(session)));
        assert!(hint_names_session(Some(Party { sid: Some("s9"), sub: "u1" }), Some(session)));
        assert!(hint_names_session(Some(Party { sid: None, sub: "u1" }), Some(session)));
        assert!(!hint_names_session(Some(Party { sid: Some("s9"), sub: "u2" }), Some(session)));
        assert!(!hint_names_session(Some(Party { sid: None, sub: "u2" }), Some(Party { sid: None, sub: "u1" })));
        assert!(hint_names_session(Some(Party { sid: None, sub: "u2" }), None));
        assert!(!hint_names_session(None, Some(session)));
        assert!(!hint_names_session(None, None));
    }

    #[test]
    fn the_person_confirms_unless_a_hint_names_the_session() {
        assert!(needs_confirmation(true, false, false));
        assert!(!needs_confirmation(true, true, false));
        assert!(!needs_confirmation(true, false, true));
        assert!(!needs_confirmation(false, false, false));
    }
}
