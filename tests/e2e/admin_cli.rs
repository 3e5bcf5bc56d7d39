//! Operator commands against a running server's config and database: `users list|show|
//! sessions|revoke|delete`, `clients list|check`, `audit tail|search` and the audit-retention
//! sweep of `db cleanup`. Each is checked against state made by the real sign-in flow (an
//! email sign-in with `offline_access`: a session, a grant, refresh and access tokens); what
//! the flow cannot make quickly (a passkey row, recovery codes, a consent, an old audit event)
//! is written through `keyward_store` (gray-box).

use crate::common::*;
use crate::grant_steps::*;
use diesel::prelude::*;
use keyward_core::secret::hash_secret;
use keyward_store::schema;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

const APP: (&str, Option<&str>) = (CLIENT_ID, Some(CLIENT_SECRET));

/// Runs a CLI command off the test's runtime, which must keep serving the SMTP sink.
async fn keyward_env(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(app.config_path()).args(args).env_remove("KEYWARD_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("keyward runs")).await.expect("joined");
    // The CLI stamped what it wrote with the wall clock.
    app.clock.catch_up();
    out
}

async fn keyward(app: &TestApp, args: &[&str]) -> Output {
    keyward_env(app, args, &[]).await
}

/// The command's stdout; panics with its stderr when it failed.
async fn ok(app: &TestApp, args: &[&str]) -> String {
    let out = keyward(app, args).await;
    assert!(out.status.success(), "keyward {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn ok_json(app: &TestApp, args: &[&str]) -> Value {
    let out = ok(app, args).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("keyward {args:?} printed no JSON ({e}):\n{out}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A signed-in person: the browser holding the session, the token response, the ID token's claims.
struct SignedIn {
    browser: Browser,
    tokens: Value,
    id: Value,
}

impl SignedIn {
    fn sub(&self) -> String {
        self.id["sub"].as_str().expect("sub").to_owned()
    }

    fn refresh_token(&self) -> String {
        s(&self.tokens, "refresh_token").expect("a refresh token")
    }

    /// The session cookie's value (the database keeps only its hash).
    fn session_cookie(&self, app: &TestApp) -> String {
        use reqwest::cookie::CookieStore as _;
        let header = self.browser.jar.cookies(&url::Url::parse(&app.issuer).expect("url")).expect("cookies");
        let header = header.to_str().expect("ascii").to_owned();
        header
            .split("; ")
            .find_map(|c| c.strip_prefix("__Host-keyward_session="))
            .or_else(|| header.split("; ").find_map(|c| c.split_once("keyward_session=").map(|(_, v)| v)))
            .expect("a session cookie")
            .to_owned()
    }
}

/// Signs in through the real flow with `offline_access` and redeems the code.
async fn sign_in_with_tokens(app: &TestApp, email: &str) -> anyhow::Result<SignedIn> {
    let browser = Browser::new()?;
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid email offline_access", &[]);
    let callback = sign_in(app, &browser, &flow, email).await?;
    let (status, tokens) = exchange(app, APP, &flow, &callback).await?;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_payload(&s(&tokens, "id_token")?)?;
    Ok(SignedIn { browser, tokens, id })
}

/// `prompt=none` for the app in this browser: where it sends the browser.
async fn silent_authorize(app: &TestApp, browser: &Browser) -> anyhow::Result<String> {
    let flow = authorize(app, CLIENT_ID, CLIENT_REDIRECT, "openid", &[("prompt", "none")]);
    browser.get(&flow.url).await?.redirect_to(&app.issuer)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// Rows that reference the account, per table (gray-box).
async fn rows_of(app: &TestApp, user_id: &str) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let id = user_id.to_owned();
    with_db(app, move |c| {
        use schema::*;
        Ok(vec![
            ("users", users::table.filter(users::id.eq(&id)).count().get_result(c)?),
            ("sessions", sessions::table.filter(sessions::user_id.eq(&id)).count().get_result(c)?),
            ("passkeys", passkeys::table.filter(passkeys::user_id.eq(&id)).count().get_result(c)?),
            ("recovery_codes", recovery_codes::table.filter(recovery_codes::user_id.eq(&id)).count().get_result(c)?),
            ("grants", grants::table.filter(grants::user_id.eq(&id)).count().get_result(c)?),
            ("refresh_tokens", refresh_tokens::table.inner_join(grants::table).filter(grants::user_id.eq(&id)).count().get_result(c)?),
            ("consents", consents::table.filter(consents::user_id.eq(&id)).count().get_result(c)?),
            ("authorization_codes", authorization_codes::table.filter(authorization_codes::user_id.eq(&id)).count().get_result(c)?),
            ("webauthn_ceremonies", webauthn_ceremonies::table.filter(webauthn_ceremonies::user_id.eq(&id)).count().get_result(c)?),
        ])
    })
    .await
}

/// Gives the account what the email flow does not: a passkey row, ten recovery codes, a
/// consent to `app2` and a pending WebAuthn ceremony.
async fn add_account_extras(app: &TestApp, user_id: &str) -> anyhow::Result<()> {
    let id = user_id.to_owned();
    with_db(app, move |c| {
        use keyward_store::models::{Ceremony, PasskeyRow};
        use keyward_store::repo;
        let t = now();
        repo::passkeys::insert(
            c,
            &PasskeyRow {
                credential_id: format!("cred-{id}"),
                user_id: id.clone(),
                passkey_json: "{}".into(),
                name: "Test Phone".into(),
                backup_eligible: true,
                backup_state: true,
                created_at: t - 60,
                last_used_at: Some(t - 30),
            },
        )?;
        let hashes: Vec<String> = (0..10).map(|i| hash_secret(&format!("recovery-{id}-{i}"))).collect();
        repo::recovery::replace_set(c, &id, &hashes, t)?;
        repo::recovery::take(c, &id, &hashes[0], t)?;
        repo::consents::grant(c, &id, CLIENT2_ID, "openid email", t)?;
        repo::passkeys::save_ceremony(
            c,
            &Ceremony {
                id: format!("ceremony-{id}"),
                kind: "register".into(),
                user_id: Some(id.clone()),
                attempt_id: None,
                state_json: "{}".into(),
                created_at: t,
                expires_at: t + 300,
            },
        )?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn users_list_show_and_sessions_report_a_signed_in_account() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let alice = sign_in_with_tokens(&app, "alice@example.com").await?;
    add_account_extras(&app, &alice.sub()).await?;
    ok(&app, &["users", "invite", "bob@example.com", "--no-email"]).await;
    ok(&app, &["users", "disable", "bob@example.com"]).await;

    // list: both accounts, with passkey counts and last sign-in.
    let list = ok_json(&app, &["users", "list", "--json"]).await;
    let rows = list.as_array().expect("an array");
    assert_eq!(rows.len(), 2, "{list}");
    let a = rows.iter().find(|r| r["email"] == "alice@example.com").expect("alice");
    assert_eq!(a["id"], alice.sub().as_str(), "the account id is the ID token's sub");
    assert_eq!(a["passkeys"], 1);
    assert!(a["disabled_at"].is_null());
    let signed_in_at = a["last_sign_in_at"].as_i64().expect("a last sign-in");
    assert!((signed_in_at - alice.id["auth_time"].as_i64().expect("auth_time")).abs() <= 1, "{a}");
    let b = rows.iter().find(|r| r["email"] == "bob@example.com").expect("bob");
    assert!(b["disabled_at"].is_i64() && b["last_sign_in_at"].is_null() && b["passkeys"] == 0, "{b}");
    let disabled = ok_json(&app, &["users", "list", "--disabled", "--json"]).await;
    assert_eq!(
        disabled.as_array().map(|r| r.iter().map(|u| u["email"].clone()).collect::<Vec<_>>()),
        Some(vec![Value::from("bob@example.com")])
    );
    let table = ok(&app, &["users", "list"]).await;
    let alice_line = table.lines().find(|l| l.contains("alice@example.com")).expect("alice's line");
    assert!(alice_line.starts_with(&alice.sub()) && alice_line.contains(" UTC") && !alice_line.contains("never"), "{table}");
    let bob_line = table.lines().find(|l| l.contains("bob@example.com")).expect("bob's line");
    assert!(bob_line.trim_end().ends_with("never"), "{table}");
    assert!(table.contains("2 accounts"), "{table}");

    // show: passkeys, the live session (named by the ID token's sid), consents, grants, codes.
    let show = ok_json(&app, &["users", "show", "alice@example.com", "--json"]).await;
    assert_eq!(show["id"], alice.sub().as_str());
    assert_eq!(show["recovery_codes_left"], 9);
    assert_eq!(show["passkeys"][0]["name"], "Test Phone");
    assert!(show["passkeys"][0]["last_used_at"].is_i64());
    let sessions = show["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{show}");
    assert_eq!(sessions[0]["sid"], alice.id["sid"], "the session is the one the ID token names");
    assert_eq!(sessions[0]["amr"], serde_json::json!(["otp"]));
    assert_eq!(show["consents"][0]["client_id"], CLIENT2_ID);
    assert_eq!(show["consents"][0]["client_name"], "Test App Two");
    let grants = show["grants"].as_array().expect("grants");
    assert_eq!(grants.len(), 1, "{show}");
    assert_eq!((grants[0]["client_id"].as_str(), grants[0]["grants"].as_i64()), (Some(CLIENT_ID), Some(1)));
    assert!(grants[0]["scopes"].as_array().expect("scopes").contains(&Value::from("offline_access")));
    let human = ok(&app, &["users", "show", "alice@example.com"]).await;
    for want in ["alice@example.com", "Test Phone", "live sessions (1)", "otp", "Test App Two", "live grants (1)", "9 left"] {
        assert!(human.contains(want), "{want:?} missing:\n{human}");
    }
    assert!(human.contains(alice.id["sid"].as_str().expect("sid")), "{human}");

    // sessions: the same session; never the cookie or its stored hash, anywhere.
    let only = ok_json(&app, &["users", "sessions", "alice@example.com", "--json"]).await;
    assert_eq!(only.as_array().map(Vec::len), Some(1));
    assert_eq!(only[0]["sid"], alice.id["sid"]);
    let listed = ok(&app, &["users", "sessions", "alice@example.com"]).await;
    assert!(listed.contains("1 live session for alice@example.com"), "{listed}");
    let cookie = alice.session_cookie(&app);
    for out in [show.to_string(), human, only.to_string(), listed] {
        assert!(!out.contains(&cookie) && !out.contains(&hash_secret(&cookie)), "a session secret was printed:\n{out}");
    }

    let missing = keyward(&app, &["users", "show", "nobody@example.com"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no account has the address nobody@example.com"), "{}", stderr(&missing));
    let bad = keyward(&app, &["users", "sessions", "not-an-address"]).await;
    assert_eq!(bad.status.code(), Some(2));
    Ok(())
}

#[tokio::test]
async fn users_revoke_signs_out_everywhere_kills_refresh_tokens_and_tells_the_apps() -> anyhow::Result<()> {
    let receiver = Receiver::start(vec![200]).await?;
    let extra = format!("backchannel_logout_uri = \"http://127.0.0.1:{}/backchannel\"", receiver.port);
    let app = spawn(AppOptions { client_extra: Some(extra), ..Default::default() }).await?;
    let alice = sign_in_with_tokens(&app, "alice@example.com").await?;
    assert!(param(&silent_authorize(&app, &alice.browser).await?, "code").is_ok(), "signed in before");
    // A refresh works before, and its successor is what an app would hold now.
    let (status, fresh) = refresh(&app, APP, &alice.refresh_token()).await?;
    assert_eq!(status, 200, "{fresh}");
    let held = s(&fresh, "refresh_token")?;
    let access = s(&fresh, "access_token")?;

    let out = ok(&app, &["users", "revoke", "alice@example.com"]).await;
    assert!(out.contains("signed alice@example.com out everywhere: 1 session ended, 1 grant revoked"), "{out}");
    assert!(out.contains("1 back-channel logout queued"), "{out}");

    let (status, refused) = refresh(&app, APP, &held).await?;
    assert_eq!((status, s(&refused, "error")?.as_str()), (400, "invalid_grant"), "the refresh token is dead");
    assert_eq!(userinfo_status(&app, &access).await?, 401, "the access token is dead");
    assert_eq!(param(&silent_authorize(&app, &alice.browser).await?, "error")?, "login_required", "signed out");

    // The app's back channel hears about it, for the session its ID token named.
    let bodies = receiver.wait_for(1, Duration::from_secs(15)).await?;
    let token = form_urlencoded::parse(bodies[0].as_bytes()).find(|(k, _)| k == "logout_token").map(|(_, v)| v.into_owned());
    let claims = jwt_payload(&token.expect("a logout_token"))?;
    assert_eq!((claims["sub"].as_str(), claims["sid"].as_str()), (Some(alice.sub().as_str()), alice.id["sid"].as_str()));

    let show = ok_json(&app, &["users", "show", "alice@example.com", "--json"]).await;
    assert_eq!((show["sessions"].as_array().map(Vec::len), show["grants"].as_array().map(Vec::len)), (Some(0), Some(0)), "{show}");
    let log = audit_log(&app).await?;
    let revoke = log.iter().find(|(k, d)| k == "admin_action" && d["command"] == "users revoke").expect("the revoke is audited");
    assert_eq!((revoke.1["email"].as_str(), revoke.1["sessions_ended"].as_i64()), (Some("alice@example.com"), Some(1)));

    // Nothing left to end; an unknown address is an error.
    assert!(ok(&app, &["users", "revoke", "alice@example.com"]).await.contains("0 sessions ended, 0 grants revoked"));
    assert_eq!(keyward(&app, &["users", "revoke", "nobody@example.com"]).await.status.code(), Some(1));
    Ok(())
}

#[tokio::test]
async fn users_delete_needs_yes_then_removes_the_account_and_everything_hanging_off_it() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let alice = sign_in_with_tokens(&app, "alice@example.com").await?;
    let id = alice.sub();
    add_account_extras(&app, &id).await?;
    let before = rows_of(&app, &id).await?;
    assert!(before.iter().all(|(_, n)| *n >= 1), "every table has a row to delete: {before:?}");

    // Without --yes: refused, says what to add, changes nothing.
    let refused = keyward(&app, &["users", "delete", "alice@example.com"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let why = stderr(&refused);
    assert!(why.contains("add --yes") && why.contains("Nothing was changed") && why.contains(&id), "{why}");
    assert_eq!(rows_of(&app, &id).await?, before);
    let (status, fresh) = refresh(&app, APP, &alice.refresh_token()).await?;
    assert_eq!(status, 200, "the account still works: {fresh}");
    assert!(param(&silent_authorize(&app, &alice.browser).await?, "code").is_ok());

    let out = ok(&app, &["users", "delete", "alice@example.com", "--yes"]).await;
    assert!(out.contains(&format!("deleted account {id} (alice@example.com)")), "{out}");
    assert!(out.contains("1 passkey, 9 recovery codes and 1 consent removed"), "{out}");
    let after = rows_of(&app, &id).await?;
    assert!(after.iter().all(|(_, n)| *n == 0), "rows left behind: {after:?}");
    let (status, dead) = refresh(&app, APP, &s(&fresh, "refresh_token")?).await?;
    assert_eq!((status, s(&dead, "error")?.as_str()), (400, "invalid_grant"));
    assert_eq!(param(&silent_authorize(&app, &alice.browser).await?, "error")?, "login_required");
    assert_eq!(keyward(&app, &["users", "show", "alice@example.com"]).await.status.code(), Some(1));
    assert_eq!(keyward(&app, &["users", "delete", "alice@example.com", "--yes"]).await.status.code(), Some(1));

    // The deletion is audited with the address (the account's older events stay).
    let found = ok_json(&app, &["audit", "search", "--kind", "admin_action", "--json"]).await;
    let del = found.as_array().expect("events").iter().find(|e| e["detail"]["command"] == "users delete").expect("audited").clone();
    assert_eq!((del["user_id"].as_str(), del["detail"]["email"].as_str()), (Some(id.as_str()), Some("alice@example.com")));
    assert!(ok(&app, &["audit", "tail"]).await.lines().any(|l| l.contains("admin_action") && l.contains("alice@example.com")));
    assert!(audit_log(&app).await?.iter().any(|(k, _)| k == "signed_in"), "history is kept");

    // Signing in again makes a new account.
    let again = sign_in_with_tokens(&app, "alice@example.com").await?;
    assert_ne!(again.sub(), id, "a new account id");
    let list = ok_json(&app, &["users", "list", "--json"]).await;
    assert_eq!(list.as_array().map(|r| r.iter().map(|u| u["id"].clone()).collect::<Vec<_>>()), Some(vec![Value::from(again.sub())]));
    Ok(())
}

#[tokio::test]
async fn audit_tail_and_search_show_sign_ins_and_admin_events() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let alice = sign_in_with_tokens(&app, "alice@example.com").await?;
    ok(&app, &["users", "invite", "bob@example.com", "--no-email"]).await;
    ok(&app, &["users", "disable", "bob@example.com"]).await;
    ok(&app, &["users", "enable", "bob@example.com"]).await;
    ok(&app, &["keys", "rotate", "--alg", "ES256"]).await;

    // tail: oldest first, time, kind, address, compact detail.
    let tail = ok(&app, &["audit", "tail", "-n", "50"]).await;
    let lines: Vec<&str> = tail.lines().collect();
    let at =
        |what: &[&str]| lines.iter().position(|l| what.iter().all(|w| l.contains(w))).unwrap_or_else(|| panic!("no {what:?} in\n{tail}"));
    let signed_in = at(&["signed_in", "alice@example.com", "\"method\":\"email_code\"", "\"client\":\"app\""]);
    let invited = at(&["admin_action", "bob@example.com", "{\"command\":\"users invite\",\"email\":\"bob@example.com\"}"]);
    let disabled = at(&["admin_action", "\"command\":\"users disable\""]);
    let enabled = at(&["admin_action", "\"command\":\"users enable\""]);
    let rotated = at(&["admin_action", "\"command\":\"keys rotate\"", "\"alg\":\"ES256\""]);
    assert!(signed_in < invited && invited < disabled && disabled < enabled && enabled < rotated, "oldest first:\n{tail}");
    assert!(lines[0].get(..4).is_some_and(|y| y.parse::<u32>().is_ok()) && lines[0].contains(" UTC "), "{tail}");
    let last = ok_json(&app, &["audit", "tail", "-n", "1", "--json"]).await;
    assert_eq!(last.as_array().map(Vec::len), Some(1));
    assert_eq!((last[0]["kind"].as_str(), last[0]["detail"]["command"].as_str()), (Some("admin_action"), Some("keys rotate")));
    assert!(last[0]["user_id"].is_null() && last[0]["at"].is_i64());

    // search: by account, kind and age.
    let mine = ok_json(&app, &["audit", "search", "--user", "alice@example.com", "--json"]).await;
    let mine = mine.as_array().expect("events");
    assert!(!mine.is_empty() && mine.iter().all(|e| e["user_id"] == alice.sub().as_str() && e["email"] == "alice@example.com"));
    assert!(mine.iter().any(|e| e["kind"] == "signed_in"));
    let bobs = ok_json(&app, &["audit", "search", "--user", "bob@example.com", "--kind", "admin_action", "--since", "1h", "--json"]).await;
    let commands: Vec<&str> = bobs.as_array().expect("events").iter().filter_map(|e| e["detail"]["command"].as_str()).collect();
    assert_eq!(commands, ["users invite", "users disable", "users enable"]);
    let sign_ins = ok(&app, &["audit", "search", "--kind", "signed_in", "--since", "24h"]).await;
    assert_eq!(sign_ins.lines().count(), 1, "{sign_ins}");
    assert!(sign_ins.contains("alice@example.com"));
    let future = ok_json(&app, &["audit", "search", "--kind", "signed_in", "--since", "0s", "--json"]).await;
    assert!(future.as_array().is_some_and(|e| e.iter().all(|e| e["at"].as_i64() >= Some(now() - 1))));
    let bad = keyward(&app, &["audit", "search", "--since", "1y"]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("24h, 7d"), "{}", stderr(&bad));
    assert_eq!(keyward(&app, &["audit", "search", "--user", "nobody@example.com"]).await.status.code(), Some(1));

    // --follow prints events as they happen.
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(app.config_path())
        .args(["audit", "tail", "-n", "0", "--follow"])
        .env_remove("KEYWARD_CONFIG")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await; // black-box: `audit tail --follow` (a subprocess) has no ready signal: let it start following
    ok(&app, &["users", "invite", "carol@example.com", "--no-email"]).await;
    let line = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    let _ = child.kill();
    let _ = child.wait();
    let line = line?.expect("a line");
    assert!(line.contains("admin_action") && line.contains("carol@example.com"), "{line}");
    Ok(())
}

/// Writes a `test_event` recorded `days` ago (gray-box).
async fn insert_event(app: &TestApp, days: i64, what: &'static str) -> anyhow::Result<()> {
    with_db(app, move |c| {
        keyward_store::repo::audit::insert(
            c,
            &keyward_store::models::AuditEvent {
                id: uuid::Uuid::new_v4().to_string(),
                at: now() - days * 86_400,
                kind: "test_event".into(),
                user_id: None,
                detail: serde_json::json!({ "what": what }).to_string(),
                client_addr: None,
            },
        )?;
        Ok(())
    })
    .await
}

async fn test_events(app: &TestApp) -> Value {
    ok_json(app, &["audit", "search", "--kind", "test_event", "--json"]).await
}

#[tokio::test]
async fn db_cleanup_sweeps_audit_events_older_than_the_retention() -> anyhow::Result<()> {
    let app = spawn(AppOptions { extra: Some("[audit]\nretention_days = 30\n".into()), ..Default::default() }).await?;
    insert_event(&app, 31, "old").await?;
    insert_event(&app, 29, "recent").await?;
    assert_eq!(test_events(&app).await.as_array().map(Vec::len), Some(2));

    let out = ok(&app, &["db", "cleanup"]).await;
    assert!(out.contains(" 1 audit events (older than 30 days)"), "{out}");
    let left = test_events(&app).await;
    assert_eq!(
        left.as_array().map(|e| e.iter().map(|e| e["detail"]["what"].clone()).collect::<Vec<_>>()),
        Some(vec![Value::from("recent")])
    );

    // retention_days = 0 keeps everything.
    insert_event(&app, 4000, "ancient").await?;
    let out = keyward_env(&app, &["db", "cleanup"], &[("KEYWARD_AUDIT__RETENTION_DAYS", "0")]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(" 0 audit events (kept forever"), "{text}{}", stderr(&out));
    assert_eq!(test_events(&app).await.as_array().map(Vec::len), Some(2));
    Ok(())
}

#[tokio::test]
async fn clients_list_and_check_show_the_configured_clients() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let list = ok_json(&app, &["clients", "list", "--json"]).await;
    let ids: Vec<&str> = list.as_array().expect("clients").iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids, [CLIENT_ID, CLIENT2_ID, PUBLIC_ID, "try-it"]);
    let app_client = &list[0];
    assert_eq!(app_client["type"], "confidential");
    assert_eq!(app_client["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(app_client["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(app_client["first_party"], true);
    assert_eq!(app_client["redirect_uris"], serde_json::json!([CLIENT_REDIRECT]));
    assert_eq!(list[1]["id_token_signing_alg"], "ES256");
    assert_eq!((list[2]["type"].as_str(), list[2]["token_endpoint_auth_method"].as_str()), (Some("public"), Some("none")));
    let table = ok(&app, &["clients", "list"]).await;
    let line = table.lines().find(|l| l.starts_with("app ")).expect("app's line");
    for want in ["Test App", "confidential", "client_secret_basic", "authorization_code,refresh_token", "yes", CLIENT_REDIRECT] {
        assert!(line.contains(want), "{want:?} missing: {line}");
    }
    for out in [list.to_string(), table] {
        assert!(!out.contains(&hash_secret(CLIENT_SECRET)) && !out.contains(CLIENT_SECRET), "no secret material:\n{out}");
    }

    let check = ok(&app, &["clients", "check"]).await;
    assert_eq!(check.lines().filter(|l| l.starts_with("client ") && l.contains(": OK (")).count(), 4, "{check}");
    assert!(check.contains("client spa: OK (public, none, 1 redirect URI)"), "{check}");
    let broken = app.dir.join("broken.toml");
    std::fs::write(&broken, "issuer = \"http://localhost:8080\"\n[[clients]]\nid = \"x\"\nredirect_uris = [\"http://x.example/cb\"]\n")?;
    let out = Command::new(bin()).arg("--config").arg(&broken).args(["clients", "check"]).env_remove("KEYWARD_CONFIG").output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("clients[0]"), "{}", stderr(&out));
    Ok(())
}

#[tokio::test]
async fn users_and_audit_commands_work_on_postgres() -> anyhow::Result<()> {
    let app = spawn(AppOptions { database: Database::Postgres, ..Default::default() }).await?;
    let alice = sign_in_with_tokens(&app, "alice@example.com").await?;
    add_account_extras(&app, &alice.sub()).await?;
    let list = ok_json(&app, &["users", "list", "--json"]).await;
    assert_eq!((list[0]["id"].as_str(), list[0]["passkeys"].as_i64()), (Some(alice.sub().as_str()), Some(1)));
    assert!(list[0]["last_sign_in_at"].is_i64(), "{list}");
    let show = ok_json(&app, &["users", "show", "alice@example.com", "--json"]).await;
    assert_eq!(show["sessions"][0]["sid"], alice.id["sid"]);
    let mine = ok_json(&app, &["audit", "search", "--user", "alice@example.com", "--kind", "signed_in", "--since", "1h", "--json"]).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(mine[0]["email"], "alice@example.com");
    ok(&app, &["users", "delete", "alice@example.com", "--yes"]).await;
    assert!(rows_of(&app, &alice.sub()).await?.iter().all(|(_, n)| *n == 0));
    let (status, dead) = refresh(&app, APP, &alice.refresh_token()).await?;
    assert_eq!((status, s(&dead, "error")?.as_str()), (400, "invalid_grant"));
    assert!(ok(&app, &["db", "cleanup"]).await.contains(" 0 audit events (older than 365 days)"));
    Ok(())
}
