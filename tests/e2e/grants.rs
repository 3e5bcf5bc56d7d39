//! Refresh tokens (rotation, reuse detection, client binding, scope), revocation (RFC 7009),
//! introspection (RFC 7662) and the client_credentials grant, over real HTTP, with ID tokens
//! validated by the `openidconnect` crate. Names follow CHECKLIST §B.

use crate::common::*;
use crate::grant_steps::*;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use openidconnect::core::CoreJwsSigningAlgorithm as Alg;

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));
const APP2: (&str, Option<&str>) = (CLIENT2_ID, Some(CLIENT2_SECRET));

/// Signs in with `offline_access` and returns the first token response.
async fn offline_tokens(app: &TestApp, browser: &Browser, email: &str) -> anyhow::Result<(Flow, serde_json::Value)> {
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid email offline_access", &[]);
    let callback = sign_in(app, browser, &flow, email).await?;
    let (status, tokens) = exchange(app, APP, &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    Ok((flow, tokens))
}

#[tokio::test]
async fn b16_refresh_rotates_and_a_replayed_token_revokes_the_whole_grant() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let (flow, first) = offline_tokens(&app, &browser, "ada@example.com").await?;
    let rt1 = s(&first, "refresh_token")?;
    assert!(rt1.len() >= 43, "a refresh token carries at least 256 bits");
    assert!(s(&first, "scope")?.contains("offline_access"));
    let claims = id_token_claims(&app, APP, CLIENT_REDIRECT, &s(&first, "id_token")?, Some(&flow.nonce), Alg::RsaSsaPkcs1V15Sha256).await?;
    let sid = jwt_payload(&s(&first, "id_token")?)?["sid"].as_str().map(str::to_owned).expect("sid in the ID token");

    // Rotation: a new refresh token, a new ID token for the same person and session, no nonce.
    let (status, second) = refresh(&app, APP, &rt1).await?;
    assert_eq!(status, 200, "{second}");
    let rt2 = s(&second, "refresh_token")?;
    assert_ne!(rt1, rt2, "every refresh rotates the refresh token");
    let refreshed = id_token_claims(&app, APP, CLIENT_REDIRECT, &s(&second, "id_token")?, None, Alg::RsaSsaPkcs1V15Sha256).await?;
    assert_eq!(refreshed.subject(), claims.subject());
    assert_eq!(refreshed.auth_time(), claims.auth_time(), "a refresh is not a new sign-in");
    assert_eq!(jwt_payload(&s(&second, "id_token")?)?["sid"], sid.as_str());
    let at2 = s(&second, "access_token")?;
    assert_eq!(userinfo_status(&app, &at2).await?, 200);

    // Replaying the spent token: invalid_grant, and the grant dies with everything it issued.
    let (status, replay) = refresh(&app, APP, &rt1).await?;
    assert_eq!((status, s(&replay, "error")?.as_str()), (400, "invalid_grant"));
    let (status, after) = refresh(&app, APP, &rt2).await?;
    assert_eq!((status, s(&after, "error")?.as_str()), (400, "invalid_grant"), "the newest token of the family is revoked too");
    assert_eq!(userinfo_status(&app, &at2).await?, 401, "access tokens of the revoked grant stop working");
    let audit = audit_log(&app).await?;
    assert!(
        audit.iter().any(|(k, d)| k == "grant_revoked" && d["reason"] == "refresh_token_reused"),
        "the reuse is in the audit log: {audit:?}"
    );
    Ok(())
}

#[tokio::test]
async fn b17_refresh_tokens_are_bound_to_their_client_and_cannot_widen_the_scope() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let (_, first) = offline_tokens(&app, &browser, "grace@example.com").await?;
    let rt = s(&first, "refresh_token")?;

    let (status, other) = refresh(&app, APP2, &rt).await?;
    assert_eq!((status, s(&other, "error")?.as_str()), (400, "invalid_grant"), "another client's refresh token");
    let (status, wider) =
        post(&app, "/token", APP, &[("grant_type", "refresh_token"), ("refresh_token", &rt), ("scope", "openid email profile")]).await?;
    assert_eq!((status, s(&wider, "error")?.as_str()), (400, "invalid_scope"));
    // Neither refused attempt spent the token; a narrower scope is fine.
    let (status, narrow) =
        post(&app, "/token", APP, &[("grant_type", "refresh_token"), ("refresh_token", &rt), ("scope", "openid")]).await?;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(s(&narrow, "scope")?, "openid");
    assert!(jwt_payload(&s(&narrow, "id_token")?)?.get("email").is_none(), "the narrower scope releases no email");

    // Without offline_access there is no refresh token at all.
    let flow = authorize(&app, CLIENT_ID, CLIENT_REDIRECT, "openid email", &[]);
    let sso = browser.get(&flow.url).await?;
    let (status, plain) = exchange(&app, APP, &flow, &sso.redirect_to(&app.issuer)?).await?;
    assert_eq!(status, 200, "{plain}");
    assert!(plain.get("refresh_token").is_none(), "refresh tokens only for offline_access: {plain}");
    Ok(())
}

#[tokio::test]
async fn rfc7009_revocation_ends_refresh_tokens_with_their_grant_and_access_tokens_one_by_one() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let (_, tokens) = offline_tokens(&app, &browser, "revoke@example.com").await?;
    let (rt, at) = (s(&tokens, "refresh_token")?, s(&tokens, "access_token")?);

    // Another client may not revoke it; nothing changes.
    let (status, refused) = post(&app, "/revoke", APP2, &[("token", &at)]).await?;
    assert_eq!((status, s(&refused, "error")?.as_str()), (400, "unauthorized_client"));
    assert_eq!(userinfo_status(&app, &at).await?, 200);
    // Unknown tokens are answered 200 (RFC 7009 §2.2), and client authentication is required.
    assert_eq!(post(&app, "/revoke", APP, &[("token", "no-such-token")]).await?.0, 200);
    let (status, unauth) = post(&app, "/revoke", (CLIENT_ID, Some("wrong")), &[("token", &at)]).await?;
    assert_eq!((status, s(&unauth, "error")?.as_str()), (401, "invalid_client"));

    // An access token alone: userinfo and introspection refuse it; the refresh token still works.
    let (status, _) = post(&app, "/revoke", APP, &[("token", &at), ("token_type_hint", "access_token")]).await?;
    assert_eq!(status, 200);
    assert_eq!(userinfo_status(&app, &at).await?, 401);
    assert_eq!(post(&app, "/introspect", APP, &[("token", &at)]).await?.1, serde_json::json!({ "active": false }));
    let (status, next) = refresh(&app, APP, &rt).await?;
    assert_eq!(status, 200, "{next}");

    // A refresh token: its grant ends, and with it the access tokens it issued.
    let (rt2, at2) = (s(&next, "refresh_token")?, s(&next, "access_token")?);
    assert_eq!(post(&app, "/revoke", APP, &[("token", &rt2), ("token_type_hint", "refresh_token")]).await?.0, 200);
    assert_eq!(refresh(&app, APP, &rt2).await?.0, 400);
    assert_eq!(userinfo_status(&app, &at2).await?, 401);
    assert!(audit_log(&app).await?.iter().any(|(k, d)| k == "grant_revoked" && d["reason"] == "revoked_by_client"));
    Ok(())
}

#[tokio::test]
async fn rfc7662_introspection_describes_live_tokens_to_their_client_only() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let browser = Browser::new()?;
    let (_, tokens) = offline_tokens(&app, &browser, "intro@example.com").await?;
    let (rt, at) = (s(&tokens, "refresh_token")?, s(&tokens, "access_token")?);
    let sub = jwt_payload(&s(&tokens, "id_token")?)?["sub"].clone();

    let (status, live) = post(&app, "/introspect", APP, &[("token", &at)]).await?;
    assert_eq!(status, 200);
    assert_eq!(live["active"], true);
    assert_eq!(live["client_id"], CLIENT_ID);
    assert_eq!(live["sub"], sub);
    assert_eq!(live["token_type"], "Bearer");
    assert_eq!(live["iss"], app.issuer.as_str());
    assert!(live["scope"].as_str().is_some_and(|s| s.contains("email")));
    assert!(live["exp"].as_i64().is_some_and(|e| e > live["iat"].as_i64().unwrap_or(i64::MAX)));
    let (_, refresh_info) = post(&app, "/introspect", APP, &[("token", &rt), ("token_type_hint", "refresh_token")]).await?;
    assert_eq!((refresh_info["active"].clone(), refresh_info["token_type"].clone()), (true.into(), "refresh_token".into()));

    assert_eq!(post(&app, "/introspect", APP2, &[("token", &at)]).await?.1, serde_json::json!({ "active": false }), "another client");
    assert_eq!(post(&app, "/introspect", APP, &[("token", "garbage")]).await?.1, serde_json::json!({ "active": false }));
    let (status, unauth) = post(&app, "/introspect", (CLIENT_ID, Some("wrong")), &[("token", &at)]).await?;
    assert_eq!((status, s(&unauth, "error")?.as_str()), (401, "invalid_client"));
    let (status, public) = post(&app, "/introspect", (PUBLIC_ID, None), &[("token", &at)]).await?;
    assert_eq!((status, s(&public, "error")?.as_str()), (401, "invalid_client"), "public clients cannot introspect");

    // A spent refresh token is inactive.
    assert_eq!(refresh(&app, APP, &rt).await?.0, 200);
    assert_eq!(post(&app, "/introspect", APP, &[("token", &rt)]).await?.1, serde_json::json!({ "active": false }));
    Ok(())
}

const SERVICE: &str = r#"
[[clients]]
id = "reporting"
name = "Reporting job"
secret_hashes = ["SECRET_HASH"]
redirect_uris = ["https://reporting.example/unused"]
grant_types = ["client_credentials"]
scopes = ["reports.read", "reports.write"]
access_token_lifetime_seconds = 120
"#;

#[tokio::test]
async fn client_credentials_grant_issues_scoped_access_tokens_to_allowed_clients_only() -> anyhow::Result<()> {
    let secret = "reporting-secret-0123456789abcdefghijklmnopqrstuv";
    let extra = SERVICE.replace("SECRET_HASH", &keyward_core::secret::hash_secret(secret));
    let app = spawn(AppOptions { extra: Some(extra), ..Default::default() }).await?;
    let job = ("reporting", Some(secret));

    let (status, tokens) = post(&app, "/token", job, &[("grant_type", "client_credentials"), ("scope", "reports.read")]).await?;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(s(&tokens, "scope")?, "reports.read");
    assert_eq!(tokens["expires_in"], 120, "the client's own access-token lifetime");
    assert!(tokens.get("id_token").is_none() && tokens.get("refresh_token").is_none(), "no person, no ID or refresh token");
    let at = s(&tokens, "access_token")?;
    let payload = jwt_payload(&at)?;
    assert_eq!((payload["sub"].as_str(), payload["client_id"].as_str()), (Some("reporting"), Some("reporting")));
    let (_, info) = post(&app, "/introspect", job, &[("token", &at)]).await?;
    assert_eq!((info["active"].clone(), info["sub"].clone()), (true.into(), "reporting".into()));
    assert_eq!(userinfo_status(&app, &at).await?, 401, "no person behind the token");

    let (status, wide) = post(&app, "/token", job, &[("grant_type", "client_credentials"), ("scope", "admin")]).await?;
    assert_eq!((status, s(&wide, "error")?.as_str()), (400, "invalid_scope"));
    let (status, not_allowed) = post(&app, "/token", APP, &[("grant_type", "client_credentials")]).await?;
    assert_eq!((status, s(&not_allowed, "error")?.as_str()), (400, "unauthorized_client"), "a client not registered for it");
    let (status, code) = post(
        &app,
        "/token",
        job,
        &[("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", "https://reporting.example/unused")],
    )
    .await?;
    assert_eq!((status, s(&code, "error")?.as_str()), (400, "unauthorized_client"), "grant types are per client");
    Ok(())
}

const NARROW: &str = r#"
[[clients]]
id = "narrow"
name = "Narrow App"
secret_hashes = ["SECRET_HASH"]
redirect_uris = ["http://localhost:9994/callback"]
first_party = true
scopes = ["openid", "profile"]
refresh_tokens = "never"
id_token_lifetime_seconds = 90
"#;

#[tokio::test]
async fn per_client_scopes_refresh_policy_and_lifetimes_apply() -> anyhow::Result<()> {
    let secret = "narrow-secret-0123456789abcdefghijklmnopqrstuvwxy";
    let app =
        spawn(AppOptions { extra: Some(NARROW.replace("SECRET_HASH", &keyward_core::secret::hash_secret(secret))), ..Default::default() })
            .await?;
    let browser = Browser::new()?;
    let flow = authorize(&app, "narrow", "http://localhost:9994/callback", "openid email offline_access profile", &[]);
    let callback = sign_in(&app, &browser, &flow, "narrow@example.com").await?;
    let (status, tokens) = exchange(&app, ("narrow", Some(secret)), &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(s(&tokens, "scope")?, "openid profile", "scopes outside the client's list are dropped");
    assert!(tokens.get("refresh_token").is_none(), "refresh_tokens = never");
    let id = jwt_payload(&s(&tokens, "id_token")?)?;
    assert!(id.get("email").is_none());
    assert_eq!(id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(), 90, "the client's own ID-token lifetime");
    Ok(())
}
