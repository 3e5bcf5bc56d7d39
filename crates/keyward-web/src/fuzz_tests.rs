//! Property tests over what this crate parses from attacker input: the token endpoint's form
//! body and `Authorization: Basic`, cookies, CSRF tokens and the passkey routes' JSON. Each
//! never panics, and refuses with the specific error. `PROPTEST_CASES` sets the case count.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::error::WebError;
use crate::routes::{parse_form, passkeys, token};
use crate::{cookies, csrf};
use actix_web::test::TestRequest;
use keyward_core::oauth_error::OAuthErrorCode as E;
use proptest::prelude::*;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "[a-z_=&%0-9A-F+\\x00\\r\\n]{0,200}".prop_map(String::into_bytes),
        Just(b"grant_type=authorization_code&grant_type=refresh_token".to_vec()),
        Just(b"client_id=%FF%FE&code=%00%0d%0a".to_vec()),
        Just(br#"{"grant_type":"authorization_code"}"#.to_vec()),
    ]
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    // Header values may be any bytes but CR, LF and NUL (the HTTP parser refuses those).
    proptest::collection::vec(any::<u8>().prop_filter("no CR/LF/NUL", |b| !matches!(b, b'\r' | b'\n' | 0)), 0..300)
}

proptest! {
    #[test]
    fn token_form_never_panics_and_refuses_with_invalid_request(body in bytes(), content_type in prop_oneof![
        Just("application/x-www-form-urlencoded".to_owned()),
        Just("application/json".to_owned()),
        Just("multipart/form-data; boundary=x".to_owned()),
        "[ -~]{0,40}",
    ]) {
        let req = TestRequest::post().insert_header(("content-type", content_type)).to_http_request();
        match token::form(&req, &body) {
            Ok(params) => {
                for (i, (k, _)) in params.iter().enumerate() {
                    prop_assert!(!params[..i].iter().any(|(p, _)| p == k), "a repeated parameter got through");
                }
            }
            Err(WebError::OAuth { error, .. }) => prop_assert_eq!(error.code, E::InvalidRequest),
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
        let _ = parse_form(&body);
    }

    #[test]
    fn basic_credentials_never_panic(value in prop_oneof![
        header_value(),
        any::<Vec<u8>>().prop_map(|b| {
            use base64::Engine;
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(b)).into_bytes()
        }),
        "Basic [A-Za-z0-9+/=%:]{0,80}".prop_map(String::into_bytes),
    ]) {
        let Ok(value) = actix_web::http::header::HeaderValue::from_bytes(&value) else { return Ok(()) };
        let req = TestRequest::post().insert_header(("authorization", value)).to_http_request();
        if let Ok(Some((id, secret))) = token::basic_credentials(&req) {
            prop_assert!(id.len() + secret.len() <= 300);
        }
    }

    #[test]
    fn cookies_and_csrf_never_panic(cookie in header_value(), presented in any::<String>(), site in "[ -~]{0,20}") {
        let Ok(cookie) = actix_web::http::header::HeaderValue::from_bytes(&cookie) else { return Ok(()) };
        let req = TestRequest::post()
            .insert_header(("cookie", cookie))
            .insert_header(("sec-fetch-site", site))
            .to_http_request();
        for name in [cookies::SESSION, cookies::BROWSER, cookies::TRY_IT] {
            if let Some(v) = cookies::get(&req, name) {
                prop_assert!(!v.is_empty() && v.len() <= 1024);
            }
        }
        let _ = cookies::browser_id(&req);
        let key = [7u8; 32];
        // A random string is never this browser's token (1 in 2^256).
        prop_assert!(!csrf::check(&req, &key, &presented));
    }

    #[test]
    fn a_csrf_token_checks_only_for_its_browser(id in "[A-Za-z0-9_-]{1,64}", other in "[A-Za-z0-9_-]{1,64}") {
        let key = [9u8; 32];
        let req = TestRequest::post().insert_header(("cookie", format!("{}={id}", cookies::BROWSER))).to_http_request();
        prop_assert!(csrf::check(&req, &key, &csrf::token(&key, &id)));
        if other != id {
            prop_assert!(!csrf::check(&req, &key, &csrf::token(&key, &other)));
        }
    }

    #[test]
    fn passkey_json_never_panics(body in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        Just(br#"{"attempt":"a","ceremony":"c","credential":{"id":"x","rawId":"!!","response":{},"type":"public-key"}}"#.to_vec()),
        Just(br#"{"ceremony":"c","credential":{"id":"AA","rawId":"AA","response":{"attestationObject":"AA","clientDataJSON":"AA"},"type":"public-key"},"name":"\u0000"}"#.to_vec()),
        Just(br#"{"attempt":["x"]}"#.to_vec()),
        "\\{\"attempt\":\"[^\"]{0,50}\"(,\"ceremony\":\"x\")?\\}".prop_map(String::into_bytes),
    ]) {
        let _ = serde_json::from_slice::<passkeys::LoginStart>(&body);
        let _ = serde_json::from_slice::<passkeys::LoginFinish>(&body);
        let _ = serde_json::from_slice::<passkeys::RegisterFinish>(&body);
    }
}
