use super::*;
use crate::client::ClientKind;
use crate::secret::hash_secret;

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn confidential() -> Client {
    Client {
        id: "app".into(),
        name: "App".into(),
        kind: ClientKind::Confidential { secret_hashes: vec![hash_secret("s").into()] },
        redirect_uris: vec!["https://app.example/cb".into()],
        first_party: true,
        ..Client::default()
    }
}

fn params(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut base = vec![
        ("client_id", "app"),
        ("redirect_uri", "https://app.example/cb"),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "st"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        base.retain(|(bk, _)| bk != k);
        if !v.is_empty() || *k == "__keep" {
            base.push((k, v));
        }
    }
    base.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn run(p: &[(String, String)]) -> Result<AuthorizationRequest, AuthorizeRejection> {
    let c = confidential();
    validate_authorization_request(p, |id| (id == "app").then_some(&c)).map(|(r, _)| r)
}

fn redirect_code(r: Result<AuthorizationRequest, AuthorizeRejection>) -> (&'static str, Option<String>) {
    match r {
        Err(AuthorizeRejection::Redirect { error, state, redirect_uri }) => {
            assert_eq!(redirect_uri, "https://app.example/cb");
            (error.code.as_str(), state)
        }
        other => panic!("expected a redirect error, got {other:?}"),
    }
}

#[test]
fn happy_request_is_accepted() {
    let r = run(&params(&[("nonce", "n"), ("extra", "foobar")])).expect("valid");
    assert_eq!(r.scope, "openid email");
    assert_eq!(r.nonce.as_deref(), Some("n"));
    assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
}

#[test]
fn b2_unknown_client_or_redirect_uri_is_never_redirected() {
    let mut p = params(&[]);
    p[0].1 = "nope".into();
    assert_eq!(run(&p), Err(AuthorizeRejection::Untrusted(UntrustedRequest::UnknownClient)));
    let p = params(&[("redirect_uri", "https://evil.example/cb")]);
    assert_eq!(run(&p), Err(AuthorizeRejection::Untrusted(UntrustedRequest::UnregisteredRedirectUri)));
    let p: Vec<_> = params(&[]).into_iter().filter(|(k, _)| k != "redirect_uri").collect();
    assert_eq!(run(&p), Err(AuthorizeRejection::Untrusted(UntrustedRequest::MissingRedirectUri)));
    let p: Vec<_> = params(&[]).into_iter().filter(|(k, _)| k != "client_id").collect();
    assert_eq!(run(&p), Err(AuthorizeRejection::Untrusted(UntrustedRequest::MissingClientId)));
    let mut p = params(&[]);
    p.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    assert_eq!(run(&p), Err(AuthorizeRejection::Untrusted(UntrustedRequest::DuplicateParameter("redirect_uri"))));
}

#[test]
fn b3_other_errors_redirect_with_state() {
    let (code, state) = redirect_code(run(&params(&[("response_type", "token")])));
    assert_eq!((code, state.as_deref()), ("unsupported_response_type", Some("st")));
    let p: Vec<_> = params(&[]).into_iter().filter(|(k, _)| k != "response_type").collect();
    assert_eq!(redirect_code(run(&p)).0, "invalid_request");
    assert_eq!(redirect_code(run(&params(&[("scope", "email")]))).0, "invalid_scope");
    assert_eq!(redirect_code(run(&params(&[("prompt", "none login")]))).0, "invalid_request");
    assert_eq!(redirect_code(run(&params(&[("max_age", "-1")]))).0, "invalid_request");
    assert_eq!(redirect_code(run(&params(&[("request", "eyJ")]))).0, "request_not_supported");
    assert_eq!(redirect_code(run(&params(&[("request_uri", "https://x")]))).0, "request_uri_not_supported");
}

#[test]
fn b7_missing_pkce_challenge_is_invalid_request() {
    let p: Vec<_> = params(&[]).into_iter().filter(|(k, _)| !k.starts_with("code_challenge")).collect();
    assert_eq!(redirect_code(run(&p)).0, "invalid_request");
}

#[test]
fn b10_plain_pkce_is_refused() {
    assert_eq!(redirect_code(run(&params(&[("code_challenge_method", "plain")]))).0, "invalid_request");
    let p: Vec<_> = params(&[]).into_iter().filter(|(k, _)| k != "code_challenge_method").collect();
    assert_eq!(redirect_code(run(&p)).0, "invalid_request");
    assert_eq!(redirect_code(run(&params(&[("code_challenge", "tooshort")]))).0, "invalid_request");
}

#[test]
fn b15_duplicated_parameter_is_invalid_request() {
    let mut p = params(&[]);
    p.push(("scope".into(), "openid".into()));
    assert_eq!(redirect_code(run(&p)).0, "invalid_request");
}

#[test]
fn b19_request_without_state_succeeds() {
    let p: Vec<_> = params(&[]).into_iter().filter(|(k, _)| k != "state").collect();
    assert_eq!(run(&p).expect("valid").state, None);
}

#[test]
fn pkce_opt_out_for_legacy_confidential_clients() {
    let mut c = confidential();
    c.require_pkce = false;
    let p: Vec<_> = params(&[]).into_iter().filter(|(k, _)| !k.starts_with("code_challenge")).collect();
    let r = validate_authorization_request(&p, |_| Some(&c)).expect("valid");
    assert_eq!(r.0.code_challenge, None);
}

#[test]
fn f3_every_over_long_parameter_is_invalid_request_naming_it() {
    for &(name, max) in PARAMETER_LIMITS {
        let at_limit = vec![(name.to_owned(), "a".repeat(max))];
        assert_eq!(over_long_parameter(&at_limit), None, "{name}: {max} bytes are allowed");
        let over = "a".repeat(max + 1);
        match run(&params(&[(name, &over)])) {
            Err(AuthorizeRejection::Redirect { error, redirect_uri, .. }) => {
                assert_eq!(redirect_uri, "https://app.example/cb", "{name}");
                assert_eq!(error.code.as_str(), "invalid_request", "{name}");
                assert_eq!(error.description, format!("{name} is too long (at most {max} bytes)"));
            }
            other => panic!("{name}: expected invalid_request, got {other:?}"),
        }
    }
    // Bytes, not characters: 2048 bytes of state may be fewer characters.
    assert_eq!(over_long_parameter(&[("state".into(), "é".repeat(1025))]), Some(("state", 2048)));
    // Parameters Keyward does not read are bounded only by the whole request.
    assert_eq!(over_long_parameter(&[("extra".into(), "a".repeat(10_000))]), None);
}

#[test]
fn f3_values_up_to_the_bounds_are_accepted_and_kept() {
    let state = "s".repeat(2048);
    let nonce = "n".repeat(512);
    let hint = format!("{}@example.com", "a".repeat(254 - 12));
    let acr = ["phr"; 8].join(" ");
    let r = run(&params(&[("state", &state), ("nonce", &nonce), ("login_hint", &hint), ("acr_values", &acr)])).expect("valid");
    assert_eq!((r.state.as_deref(), r.nonce.as_deref(), r.login_hint.as_deref()), (Some(&*state), Some(&*nonce), Some(&*hint)));
    assert_eq!(r.acr_values.len(), 8);
}

#[test]
fn f3_a_bound_is_checked_before_the_value_is_parsed() {
    // An over-long `claims` is refused as too long, not parsed as JSON first.
    let claims = format!("{{\"id_token\":{{\"email\":null,\"x\":\"{}\"}}}}", "a".repeat(5000));
    let Err(AuthorizeRejection::Redirect { error, .. }) = run(&params(&[("claims", &claims)])) else { panic!("refused") };
    assert_eq!(error.description, "claims is too long (at most 4096 bytes)");
}
