//! `private_key_jwt` client authentication (OIDC Core §9, RFC 7523 §2.2 and §3) over real
//! HTTP: client keys generated here (ES256 and RS256), assertions signed by the
//! `jsonwebtoken` crate, keys registered inline or served by a JWK Set URL the test runs.

use crate::common::*;
use crate::grant_steps::*;
use anyhow::Context as _;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use openidconnect::core::CoreJwsSigningAlgorithm as Alg;
use serde_json::{Value, json};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SIGNED_ID: &str = "signed";
const SIGNED_REDIRECT: &str = "http://localhost:9996/callback";

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// One DER element of `input`: (tag, contents, what follows it).
fn der(input: &[u8]) -> (u8, &[u8], &[u8]) {
    let (tag, first) = (input[0], input[1]);
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        (input[2..2 + n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), 2 + n)
    };
    (tag, &input[head..head + len], &input[head + len..])
}

/// A client's signing key: the private half signs assertions, the public half is its JWK.
pub(crate) struct ClientKey {
    alg: Algorithm,
    kid: String,
    private: EncodingKey,
    jwk: Value,
}

impl ClientKey {
    pub(crate) fn es256(kid: &str) -> ClientKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let pkcs8 = pair.to_pkcs8v1().unwrap();
        // X9.62 uncompressed: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        assert_eq!((point.len(), point[0]), (65, 4));
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&point[1..33]), "y": b64(&point[33..]),
        });
        ClientKey { alg: Algorithm::ES256, kid: kid.into(), private: EncodingKey::from_ec_der(pkcs8.as_ref()), jwk }
    }

    pub(crate) fn rs256(kid: &str) -> ClientKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let pkcs8: Pkcs8V1Der<'static> = pair.as_der().unwrap();
        // PKCS#8 = SEQUENCE { version, algorithm, OCTET STRING { RSAPrivateKey } } and
        // RSAPrivateKey (RFC 8017) = SEQUENCE { version, n, e, … }: the signer wants the
        // inner RSAPrivateKey, the JWK wants n and e.
        let (_, info, _) = der(pkcs8.as_ref());
        let (_, _, rest) = der(info);
        let (_, _, rest) = der(rest);
        let (tag, pkcs1, _) = der(rest);
        assert_eq!(tag, 0x04, "the private key is an OCTET STRING");
        let (_, fields, _) = der(pkcs1);
        let (_, _, rest) = der(fields);
        let (_, n, rest) = der(rest);
        let (_, e, _) = der(rest);
        let unsigned = |i: &[u8]| b64(i.iter().position(|&b| b != 0).map_or(i, |p| &i[p..]));
        let jwk = json!({ "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": unsigned(n), "e": unsigned(e) });
        ClientKey { alg: Algorithm::RS256, kid: kid.into(), private: EncodingKey::from_rsa_der(pkcs1), jwk }
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.private).unwrap()
    }
}

pub(crate) fn jwk_set(keys: &[&ClientKey]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// The claims of a good assertion (RFC 7523 §3) for `client_id` at `aud`, with a fresh jti.
pub(crate) fn claims(client_id: &str, aud: &str) -> Value {
    let now = now();
    json!({
        "iss": client_id, "sub": client_id, "aud": aud, "iat": now, "exp": now + 60,
        "jti": uuid::Uuid::new_v4().simple().to_string(),
    })
}

/// POSTs `form` as is (no client authentication added): the status and the JSON body.
pub(crate) async fn send(app: &TestApp, path: &str, form: &[(&str, &str)]) -> anyhow::Result<(u16, Value)> {
    let resp = reqwest::Client::new().post(app.url(path)).form(form).send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let json = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))? };
    Ok((status, json))
}

/// POSTs `form` authenticated by `assertion` (and no client_id).
pub(crate) async fn send_signed(app: &TestApp, path: &str, assertion: &str, form: &[(&str, &str)]) -> anyhow::Result<(u16, Value)> {
    let mut form = form.to_vec();
    form.extend([("client_assertion_type", JWT_BEARER), ("client_assertion", assertion)]);
    send(app, path, &form).await
}

pub(crate) fn error(answer: &(u16, Value)) -> (u16, String) {
    (answer.0, answer.1["error"].as_str().unwrap_or_default().to_owned())
}

fn signed_client(keys: &str) -> String {
    format!(
        r#"
[[clients]]
id = "{SIGNED_ID}"
name = "Signed assertions"
token_endpoint_auth_method = "private_key_jwt"
{keys}
redirect_uris = ["{SIGNED_REDIRECT}"]
first_party = true
"#
    )
}

#[tokio::test]
async fn private_key_jwt_with_inline_keys_authenticates_token_introspect_and_revoke_and_refuses_bad_assertions() -> anyhow::Result<()> {
    let (es, rs) = (ClientKey::es256("es-1"), ClientKey::rs256("rs-1"));
    let extra = signed_client(&format!("jwks = '{}'", jwk_set(&[&es, &rs])));
    let app = spawn(AppOptions { extra: Some(extra), ..Default::default() }).await?;
    let browser = Browser::new()?;
    let token_url = app.url("/token");

    // The code flow, the client authenticated by an ES256 assertion alone (no client_id).
    let flow = authorize(&app, SIGNED_ID, SIGNED_REDIRECT, "openid email", &[]);
    let callback = sign_in(&app, &browser, &flow, "pkjwt@example.com").await?;
    let code = param(&callback, "code")?;
    let redeem = [("grant_type", "authorization_code"), ("redirect_uri", SIGNED_REDIRECT), ("code_verifier", flow.verifier.as_str())];
    let first = es.sign(&claims(SIGNED_ID, &token_url));
    let mut form = redeem.to_vec();
    form.push(("code", &code));
    let (status, tokens) = send_signed(&app, "/token", &first, &form).await?;
    assert_eq!(status, 200, "{tokens}");
    let id =
        id_token_claims(&app, (SIGNED_ID, None), SIGNED_REDIRECT, &s(&tokens, "id_token")?, Some(&flow.nonce), Alg::RsaSsaPkcs1V15Sha256)
            .await?;
    assert_eq!(id.email().map(|e| e.as_str()), Some("pkjwt@example.com"));

    // The same assertion again (same jti), with a fresh code: refused as a replay, and the
    // code is not spent by the refusal.
    let flow2 = authorize(&app, SIGNED_ID, SIGNED_REDIRECT, "openid email offline_access", &[]);
    let code2 = param(&browser.get(&flow2.url).await?.redirect_to(&app.issuer)?, "code")?;
    let redeem2 = [
        ("grant_type", "authorization_code"),
        ("redirect_uri", SIGNED_REDIRECT),
        ("code_verifier", flow2.verifier.as_str()),
        ("code", code2.as_str()),
    ];
    let replayed = send_signed(&app, "/token", &first, &redeem2).await?;
    assert_eq!(error(&replayed), (401, "invalid_client".into()), "a replayed jti");
    assert!(replayed.1["error_description"].as_str().unwrap_or_default().contains("replay"), "{replayed:?}");
    // A fresh RS256 assertion, this time with the (optional) matching client_id.
    let mut form = redeem2.to_vec();
    form.push(("client_id", SIGNED_ID));
    let (status, tokens2) = send_signed(&app, "/token", &rs.sign(&claims(SIGNED_ID, &token_url)), &form).await?;
    assert_eq!(status, 200, "{tokens2}");
    let (rt, at) = (s(&tokens2, "refresh_token")?, s(&tokens2, "access_token")?);
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt.as_str())];

    // Bad assertions, each tried on the refresh token: invalid_client every time.
    let stranger = ClientKey::es256("es-1"); // the registered kid, another key
    let now = now();
    let with = |changes: Value| {
        let mut c = claims(SIGNED_ID, &token_url);
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(claims(SIGNED_ID, &token_url).to_string().as_bytes()));
    let bad = [
        ("another audience", es.sign(&with(json!({ "aud": "https://elsewhere.example/token" })))),
        ("expired", es.sign(&with(json!({ "iat": now - 300, "exp": now - 120 })))),
        ("signed by an unregistered key", stranger.sign(&claims(SIGNED_ID, &token_url))),
        ("iss is another client", es.sign(&with(json!({ "iss": CLIENT_ID })))),
        ("sub is another client", es.sign(&with(json!({ "sub": CLIENT_ID })))),
        ("living an hour", es.sign(&with(json!({ "exp": now + 3600 })))),
        ("without jti", es.sign(&with(json!({ "jti": null })))),
        ("without exp", es.sign(&with(json!({ "exp": null })))),
        ("alg none", unsigned),
        ("not a JWT", "not-a-jwt".to_owned()),
    ];
    for (what, assertion) in &bad {
        let refused = send_signed(&app, "/token", assertion, &refresh).await?;
        assert_eq!(error(&refused), (401, "invalid_client".into()), "{what}");
        if *what == "living an hour" {
            assert!(refused.1["error_description"].as_str().unwrap_or_default().contains("too long"), "{refused:?}");
        }
    }
    let mut form = refresh.to_vec();
    form.push(("client_id", CLIENT_ID));
    let good_but_other_id = es.sign(&claims(SIGNED_ID, &token_url));
    assert_eq!(error(&send_signed(&app, "/token", &good_but_other_id, &form).await?), (401, "invalid_client".into()), "client_id ≠ sub");
    // This client has no secret: client_secret_basic and client_secret_post are refused.
    assert_eq!(error(&post(&app, "/token", (SIGNED_ID, Some("guess")), &refresh).await?), (401, "invalid_client".into()));
    let mut form = refresh.to_vec();
    form.extend([("client_id", SIGNED_ID), ("client_secret", "guess")]);
    assert_eq!(error(&send(&app, "/token", &form).await?), (401, "invalid_client".into()));
    // A wrong assertion type is a malformed request.
    let mut form = refresh.to_vec();
    let fresh = es.sign(&claims(SIGNED_ID, &token_url));
    form.extend([("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"), ("client_assertion", &fresh)]);
    assert_eq!(error(&send(&app, "/token", &form).await?), (400, "invalid_request".into()));

    // None of those spent the refresh token: a good assertion still refreshes.
    let (status, refreshed) = send_signed(&app, "/token", &es.sign(&claims(SIGNED_ID, &token_url)), &refresh).await?;
    assert_eq!(status, 200, "{refreshed}");
    let rt2 = s(&refreshed, "refresh_token")?;

    // Introspection (aud = the introspection endpoint) and revocation (aud = the issuer).
    let (status, info) = send_signed(&app, "/introspect", &rs.sign(&claims(SIGNED_ID, &app.url("/introspect"))), &[("token", &at)]).await?;
    assert_eq!(status, 200, "{info}");
    assert_eq!((info["active"].clone(), info["client_id"].clone()), (json!(true), json!(SIGNED_ID)), "{info}");
    let (status, _) = send_signed(&app, "/revoke", &es.sign(&claims(SIGNED_ID, &app.issuer)), &[("token", &rt2)]).await?;
    assert_eq!(status, 200);
    let spent =
        send_signed(&app, "/token", &es.sign(&claims(SIGNED_ID, &token_url)), &[("grant_type", "refresh_token"), ("refresh_token", &rt2)])
            .await?;
    assert_eq!(error(&spent), (400, "invalid_grant".into()), "the revoked refresh token");
    // Both back-channel endpoints refuse a bad assertion too.
    let expired = es.sign(&with(json!({ "iat": now - 300, "exp": now - 120 })));
    assert_eq!(error(&send_signed(&app, "/introspect", &expired, &[("token", &at)]).await?), (401, "invalid_client".into()));
    assert_eq!(error(&send_signed(&app, "/revoke", &expired, &[("token", &at)]).await?), (401, "invalid_client".into()));
    Ok(())
}

/// RFC 7523 §3 item 4: a JWT carrying `nbf` "MUST NOT be accepted for processing" before
/// that time.
#[tokio::test]
async fn private_key_jwt_refuses_an_assertion_that_is_not_yet_valid() -> anyhow::Result<()> {
    let key = ClientKey::es256("k");
    let extra = signed_client(&format!("jwks = '{}'\ngrant_types = [\"client_credentials\"]\nscopes = [\"jobs.run\"]", jwk_set(&[&key])));
    let app = spawn(AppOptions { extra: Some(extra), ..Default::default() }).await?;
    let grant = [("grant_type", "client_credentials"), ("scope", "jobs.run")];
    let token_url = app.url("/token");

    let (status, tokens) = send_signed(&app, "/token", &key.sign(&claims(SIGNED_ID, &token_url)), &grant).await?;
    assert_eq!(status, 200, "the positive control: {tokens}");
    let mut early = claims(SIGNED_ID, &token_url);
    early["nbf"] = json!(now() + 300);
    let refused = send_signed(&app, "/token", &key.sign(&early), &grant).await?;
    assert_eq!(error(&refused), (401, "invalid_client".into()), "an assertion valid only in five minutes: {refused:?}");
    Ok(())
}

/// Serves a JWK Set that the test can replace, counting the requests.
struct JwksServer {
    port: u16,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> anyhow::Result<JwksServer> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (body, fetches) = (Arc::new(Mutex::new(body)), Arc::new(AtomicUsize::new(0)));
        let (served, counted) = (body.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (served, counted) = (served.clone(), counted.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let json = served.lock().unwrap().clone();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{json}",
                        json.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        Ok(JwksServer { port, body, fetches })
    }

    fn serve(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

pub(crate) fn job_client(id: &str, jwks_uri: &str) -> String {
    format!(
        r#"
[[clients]]
id = "{id}"
name = "Job {id}"
token_endpoint_auth_method = "private_key_jwt"
jwks_uri = "{jwks_uri}"
# The test serves the keys on loopback, which only an opted-in client may fetch from.
allow_private_jwks_uri = true
redirect_uris = ["https://{id}.example/unused"]
grant_types = ["client_credentials"]
scopes = ["jobs.run"]
"#
    )
}

#[tokio::test]
async fn private_key_jwt_with_a_jwks_uri_caches_the_keys_and_follows_a_key_rotation() -> anyhow::Result<()> {
    let (old, new) = (ClientKey::es256("2024"), ClientKey::rs256("2025"));
    let server = JwksServer::start(jwk_set(&[&old])).await?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port(); // nothing listens once dropped
    let extra = job_client("rotating", &format!("http://127.0.0.1:{}/jwks.json", server.port))
        + &job_client("unreachable", &format!("http://127.0.0.1:{closed}/jwks.json"));
    let app = spawn(AppOptions { extra: Some(extra), ..Default::default() }).await?;
    let token_url = app.url("/token");
    let grant = [("grant_type", "client_credentials"), ("scope", "jobs.run")];

    let (status, tokens) = send_signed(&app, "/token", &old.sign(&claims("rotating", &token_url)), &grant).await?;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(jwt_payload(&s(&tokens, "access_token")?)?["client_id"], "rotating");
    assert_eq!(server.fetches(), 1, "the keys were fetched from the jwks_uri");
    let (status, again) = send_signed(&app, "/token", &old.sign(&claims("rotating", &token_url)), &grant).await?;
    assert_eq!(status, 200, "{again}");
    assert_eq!(server.fetches(), 1, "the keys are cached");

    // The client rotates: its URL now serves only the new key. The unknown kid makes
    // Keyward fetch the set once more, and the new key is accepted at once.
    server.serve(jwk_set(&[&new]));
    let (status, rotated) = send_signed(&app, "/token", &new.sign(&claims("rotating", &token_url)), &grant).await?;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(server.fetches(), 2, "one re-fetch for the unknown kid");
    let (status, cached) = send_signed(&app, "/token", &new.sign(&claims("rotating", &token_url)), &grant).await?;
    assert_eq!(status, 200, "{cached}");
    assert_eq!(server.fetches(), 2, "the new set is cached in turn");
    // The retired key no longer works.
    let retired = send_signed(&app, "/token", &old.sign(&claims("rotating", &token_url)), &grant).await?;
    assert_eq!(error(&retired), (401, "invalid_client".into()), "a key the client no longer publishes");

    // Keys that cannot be fetched: the client is refused, not a server error.
    let down = send_signed(&app, "/token", &old.sign(&claims("unreachable", &token_url)), &grant).await?;
    assert_eq!(error(&down), (401, "invalid_client".into()), "{down:?}");
    Ok(())
}

fn config_check(name: &str, text: &str) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir().join(format!("keyward-pkjwt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(bin()).args(["config", "check"]).arg(&path).env_remove("KEYWARD_CONFIG").output().expect("runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), path.display().to_string())
}

fn pkjwt_config(keys: &str) -> String {
    format!(
        "issuer = \"https://id.example.com\"\n# Only the checks under test: no mail server or master key in these snippets.\nallow_development_defaults = true\n[[clients]]\nid = \"signed\"\nname = \"Signed\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n{keys}\nredirect_uris = [\"https://signed.example/cb\"]\n"
    )
}

#[test]
fn config_check_names_the_key_when_a_private_key_jwt_client_has_no_usable_keys() {
    let good = ClientKey::es256("k");
    let (code, err, _) = config_check("good.toml", &pkjwt_config(&format!("jwks = '{}'", jwk_set(&[&good]))));
    assert_eq!(code, Some(0), "a valid inline JWK Set passes: {err}");
    let (code, err, _) = config_check("uri.toml", &pkjwt_config("jwks_uri = \"https://signed.example/jwks.json\""));
    assert_eq!(code, Some(0), "an https jwks_uri passes: {err}");

    let both = format!("jwks = '{}'\njwks_uri = \"https://signed.example/jwks.json\"", jwk_set(&[&good]));
    let cases = [
        ("none.toml", String::new(), "`clients[0].jwks`", "jwks or jwks_uri"),
        ("text.toml", "jwks = 'my public key'".to_owned(), "`clients[0].jwks`", "not a JWK Set"),
        ("empty.toml", "jwks = '{\"keys\": []}'".to_owned(), "`clients[0].jwks`", "not a JWK Set"),
        ("both.toml", both, "`clients[0].jwks`", "jwks or jwks_uri"),
        ("http.toml", "jwks_uri = \"http://signed.example/jwks.json\"".to_owned(), "`clients[0].jwks_uri`", "https"),
        (
            "secret.toml",
            format!("jwks = '{}'\nsecret_hashes = [\"{}\"]", jwk_set(&[&good]), "a".repeat(43)),
            "`clients[0].secret_hashes`",
            "no secret",
        ),
    ];
    for (name, keys, key, says) in cases {
        let (code, err, file) = config_check(name, &pkjwt_config(&keys));
        assert_eq!(code, Some(2), "{name} must fail:\n{err}");
        assert!(err.contains(&format!("{file}: {key}")) && err.contains(says), "{name}: {key} / {says:?} not reported:\n{err}");
    }
    // Keys on a client that does not use them are a mistake too.
    let secret_client = format!(
        "issuer = \"https://id.example.com\"\n# Only the checks under test: no mail server or master key in these snippets.\nallow_development_defaults = true\n[[clients]]\nid = \"app\"\nsecret_hashes = [\"{}\"]\njwks = '{}'\nredirect_uris = [\"https://app.example/cb\"]\n",
        "a".repeat(43),
        jwk_set(&[&good])
    );
    let (code, err, file) = config_check("unused.toml", &secret_client);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("{file}: `clients[0].jwks`")) && err.contains("private_key_jwt"), "{err}");
}

/// `config check` passes whatever is JSON with a non-empty `keys` array, but the server reads
/// the set as JWKs (`jsonwebtoken::jwk::JwkSet`, crates/keyward-service/src/client_keys.rs):
/// a key it cannot read (here an EC key without its coordinates) fails the whole set, so
/// every assertion of the client is refused at run time with "the client's configured keys
/// do not parse". The check should say so before the server starts.
#[test]
fn config_check_refuses_an_inline_jwks_the_server_cannot_read() {
    let (code, err, file) =
        config_check("unreadable.toml", &pkjwt_config(r#"jwks = '{"keys": [{"kty": "EC", "crv": "P-256", "kid": "k"}]}'"#));
    assert_eq!(code, Some(2), "an EC key without x and y passes the check:\n{err}");
    assert!(err.contains(&format!("{file}: `clients[0].jwks`")), "{err}");
}
