//! Issue 14, finding 4 in Chromium with a virtual authenticator: on an old sign-in, adding a
//! passkey and making new recovery codes first confirm it's you (by emailed code, then by
//! the passkey itself), and each change then continues where the person was.

use crate::common::*;
use crate::reauth::age_sessions;
use keyward_testkit::app::*;
use keyward_testkit::browser::code_in;
use std::time::Duration;

/// The session rows' `amr`, gray-box.
async fn session_amrs(app: &TestApp) -> anyhow::Result<Vec<String>> {
    with_db(app, |c| {
        use diesel::prelude::*;
        use keyward_store::schema::sessions as s;
        Ok(s::table.select(s::amr).load::<String>(c)?)
    })
    .await
}

#[tokio::test]
async fn f4_chromium_confirms_an_old_sign_in_by_email_then_by_passkey_and_the_changes_continue() -> anyhow::Result<()> {
    let app = spawn(AppOptions::default()).await?;
    let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
    let email = "chromium-reauth@example.com";
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/reauth_journey.mjs");
    let mut journey = Journey::start(script, &[&auth_request(&rp).url, email, CLIENT_REDIRECT, &app.url("/account")])?;
    assert_eq!(journey.next().await?["step"], "code");
    let code = code_in(&app.smtp.wait_for_mail_about(email, "sign-in code", 0, Duration::from_secs(15)).await?.text)?;
    journey.send(format!("{code}\n").as_bytes()).await?;

    assert_eq!(journey.next().await?["step"], "account");
    age_sessions(&app, 7).await?;
    journey.send(b"aged\n").await?;
    let asked = journey.next().await?;
    assert_eq!(asked["step"], "confirm_code");
    assert!(asked["url"].as_str().unwrap_or_default().ends_with("/account/confirm?next=%2Faccount%3Fresume%3Dadd-passkey"), "{asked}");
    let confirmation = code_in(&app.smtp.wait_for_mail_about(email, "confirmation", 0, Duration::from_secs(15)).await?.text)?;
    journey.send(format!("{confirmation}\n").as_bytes()).await?;

    let created = journey.next().await?;
    assert_eq!(created["created"]["recovery_codes"], 10, "the passkey was made after confirming, with its recovery codes: {created}");
    assert!(!created["created"]["url"].as_str().unwrap_or_default().contains("resume="), "a reload does not start it again: {created}");
    let aged = journey.next().await?;
    assert_eq!((aged["step"].as_str(), aged["passkeys"].as_u64()), (Some("aged_again"), Some(1)), "{aged}");
    age_sessions(&app, 7).await?;
    journey.send(b"aged\n").await?;

    let done = journey.next().await?;
    assert!(done["confirmed_at"].as_str().unwrap_or_default().ends_with("/account?done=confirmed#recovery"), "{done}");
    assert_eq!(done["new_codes"], 10, "{done}");
    assert_eq!(done["errors"], serde_json::json!([]), "no script or CSP errors, no unexpected failures");
    let amrs = session_amrs(&app).await?;
    assert!(amrs.iter().any(|a| a.contains("user") && (a.contains("hwk") || a.contains("swk"))), "confirmed with the passkey: {amrs:?}");
    assert!(journey.finish().await?, "the script ran to its end");
    Ok(())
}
