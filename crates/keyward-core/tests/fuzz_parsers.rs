//! Property tests over the parsers that see attacker input: the authorization request, the
//! client's credentials at the token endpoint (client assertions included) and the config
//! file. Each never panics, and every refusal is the specific error the protocol names.
//! `PROPTEST_CASES` sets the number of cases (proptest's default, 256, otherwise).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use keyward_core::authorize::{AuthorizeRejection, over_long_parameter, validate_authorization_request};
use keyward_core::client::{Client, ClientKeys, ClientKind};
use keyward_core::client_auth::{JWT_BEARER_ASSERTION, PresentedCredentials, authenticate_client};
use keyward_core::config::Config;
use keyward_core::oauth_error::OAuthErrorCode as E;
use keyward_core::secret::hash_secret;
use proptest::prelude::*;
use std::path::Path;

const NAMES: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "response_mode",
    "request",
    "request_uri",
    "acr_values",
    "id_token_hint",
    "claims",
    "display",
    "ui_locales",
    "claims_locales",
];

fn clients() -> Vec<Client> {
    vec![
        Client {
            id: "app".into(),
            name: "App".into(),
            kind: ClientKind::Confidential { secret_hashes: vec![hash_secret("s").into()] },
            redirect_uris: vec!["https://app.example/cb".into()],
            ..Client::default()
        },
        Client {
            id: "spa".into(),
            kind: ClientKind::Public,
            redirect_uris: vec!["http://127.0.0.1:3000/callback".into()],
            ..Client::default()
        },
        Client {
            id: "jwt".into(),
            kind: ClientKind::PrivateKeyJwt { keys: ClientKeys::Inline(r#"{"keys":[]}"#.into()) },
            redirect_uris: vec!["https://jwt.example/cb".into()],
            ..Client::default()
        },
    ]
}

/// Strings an attacker would try: control characters, NUL, CR/LF, invalid-looking escapes,
/// JSON fragments, URLs, long runs, and arbitrary Unicode.
fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f%&=+ /\\\\:.@{}\\[\\]\"a-z0-9\u{202e}\u{feff}]{0,64}",
        Just(String::new()),
        Just("code".to_owned()),
        Just("openid email profile".to_owned()),
        Just("S256".to_owned()),
        Just("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        Just("https://app.example/cb".to_owned()),
        Just("http://127.0.0.1:3000/callback\r\nX: y".to_owned()),
        Just("http://0x7f.1:3000\\callback".to_owned()),
        Just(r#"{"id_token":{"email":{"essential":true}},"userinfo":[]}"#.to_owned()),
        Just("[1,2,{".to_owned()),
        Just("none login".to_owned()),
        Just("-1".to_owned()),
        Just("99999999999999999999999".to_owned()),
        (1usize..40_000).prop_map(|n| "a".repeat(n)),
    ]
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![4 => proptest::sample::select(NAMES).prop_map(str::to_owned), 1 => nasty()];
    let value = prop_oneof![
        Just("app".to_owned()),
        Just("spa".to_owned()),
        Just("https://app.example/cb".to_owned()),
        Just("http://127.0.0.1:3000/callback".to_owned()),
        nasty()
    ];
    proptest::collection::vec((name, value), 0..24)
}

fn assertion() -> impl Strategy<Value = String> {
    let b64 = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let header = prop_oneof![
        Just(r#"{"alg":"none"}"#.to_owned()),
        Just(r#"{"alg":"RS256","kid":"x"}"#.to_owned()),
        Just(r#"{"alg":"HS256"}"#.to_owned()),
        any::<String>()
    ];
    let payload = prop_oneof![
        Just(r#"{"sub":"jwt","iss":"jwt"}"#.to_owned()),
        Just(r#"{"sub":"app"}"#.to_owned()),
        Just(r#"{"sub":17}"#.to_owned()),
        Just(r#"{"sub":"jwt""#.to_owned()),
        any::<String>()
    ];
    prop_oneof![
        (header, payload, any::<String>()).prop_map(move |(h, p, s)| format!("{}.{}.{}", b64(h), b64(p), b64(s))),
        nasty(),
        "[A-Za-z0-9_.=+/-]{0,200}",
    ]
}

fn credentials() -> impl Strategy<Value = PresentedCredentials> {
    let id = prop_oneof![Just("app".to_owned()), Just("spa".to_owned()), Just("jwt".to_owned()), nasty()];
    let assertion_type = prop_oneof![Just(JWT_BEARER_ASSERTION.to_owned()), nasty()];
    (
        proptest::option::of((id.clone(), nasty())),
        proptest::option::of(id),
        proptest::option::of(prop_oneof![Just("s".to_owned()), nasty()]),
        proptest::option::of(assertion_type),
        proptest::option::of(assertion()),
    )
        .prop_map(|(basic, form_client_id, form_client_secret, assertion_type, assertion)| PresentedCredentials {
            basic,
            form_client_id,
            form_client_secret,
            assertion_type,
            assertion,
        })
}

/// TOML documents: random text, random edits of a valid config, random values for its keys.
fn toml_text() -> impl Strategy<Value = String> {
    const GOOD: &str = "issuer = \"http://localhost:8080\"\n\n[[clients]]\nid = \"app\"\nname = \"App\"\nsecret_hashes = [\"xSx6HkD6Pq9OCC5Ed_PvvCHuKWT6n1DUDwdEVAs3Jr8\"]\nredirect_uris = [\"https://app.example/cb\"]\n";
    let keys = proptest::sample::select(
        &[
            "issuer",
            "listen",
            "data_dir",
            "trusted_proxies",
            "database.url",
            "database.pool_size",
            "keys.master_key",
            "login.signup",
            "login.code_lifetime_seconds",
            "login.allowed_domains",
            "tokens.access_token_seconds",
            "mail.transport",
            "mail.smtp.port",
            "limits.sign_in_burst_per_ip",
            "metrics.listen",
            "try_it.enabled",
            "audit.retention_days",
        ][..],
    );
    let value = prop_oneof![
        Just("\"\"".to_owned()),
        Just("-1".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("[\"10.0.0.0/33\", \"::/129\", \"x\"]".to_owned()),
        Just("\"http://127.0.0.1:1\"".to_owned()),
        Just("\"https://[::1]:0/\"".to_owned()),
        Just("1e400".to_owned()),
        Just("nan".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        nasty().prop_map(|s| format!("{s:?}")),
    ];
    prop_oneof![
        any::<String>(),
        (0usize..GOOD.len(), any::<String>()).prop_map(|(at, ins)| {
            let at = (0..=at).rev().find(|i| GOOD.is_char_boundary(*i)).unwrap_or(0);
            format!("{}{ins}{}", &GOOD[..at], &GOOD[at..])
        }),
        proptest::collection::vec((keys, value), 1..6).prop_map(|kvs| {
            let mut text = String::new();
            let mut tables = String::new();
            for (k, v) in kvs {
                match k.rsplit_once('.') {
                    None => text.push_str(&format!("{k} = {v}\n")),
                    Some((table, key)) => tables.push_str(&format!("[{table}]\n{key} = {v}\n")),
                }
            }
            format!("{text}{GOOD}{tables}")
        }),
    ]
}

proptest! {
    #[test]
    fn authorization_request_never_panics_and_refuses_with_protocol_errors(p in params()) {
        let cs = clients();
        match validate_authorization_request(&p, |id| cs.iter().find(|c| c.id == id)) {
            Ok((req, client)) => {
                // Only a registered redirect URI is ever answered on.
                prop_assert!(client.match_redirect_uri(&req.redirect_uri).is_some());
                prop_assert!(req.scope.split(' ').any(|s| s == "openid"));
                // Issue 14, finding 3: nothing over its bound is ever accepted (and stored).
                prop_assert_eq!(over_long_parameter(&p), None);
            }
            Err(AuthorizeRejection::Untrusted(why)) => prop_assert!(!why.explain().is_empty()),
            Err(AuthorizeRejection::Redirect { redirect_uri, error, .. }) => {
                let client = cs.iter().find(|c| c.match_redirect_uri(&redirect_uri).is_some());
                prop_assert!(client.is_some(), "redirected to an unregistered URI {redirect_uri:?}");
                prop_assert!(matches!(
                    error.code,
                    E::InvalidRequest
                        | E::UnsupportedResponseType
                        | E::InvalidScope
                        | E::RequestNotSupported
                        | E::RequestUriNotSupported
                        | E::UnauthorizedClient
                ), "unexpected error code {:?}", error.code);
            }
        }
    }

    #[test]
    fn client_credentials_never_panic_and_refuse_with_invalid_client_or_request(creds in credentials()) {
        let cs = clients();
        match authenticate_client(&creds, |id| cs.iter().find(|c| c.id == id)) {
            Ok((client, _)) => prop_assert!(cs.iter().any(|c| c.id == client.id)),
            Err((error, _)) => prop_assert!(
                matches!(error.code, E::InvalidClient | E::InvalidRequest),
                "unexpected error code {:?}",
                error.code
            ),
        }
    }

    #[test]
    fn config_file_never_panics_and_every_error_names_key_and_fix(text in toml_text()) {
        if let Err(errors) = Config::from_toml(Path::new("keyward.toml"), &text, &[]) {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert!(!e.key.is_empty() && !e.problem.is_empty() && !e.fix.is_empty(), "{e:?}");
            }
        }
    }

    #[test]
    fn config_env_overrides_never_panic(name in "KEYWARD_[A-Z_]{0,30}", value in nasty()) {
        let text = "issuer = \"http://localhost:8080\"\n";
        let _ = Config::from_toml(Path::new("keyward.toml"), text, &[(name, value)]);
    }
}
