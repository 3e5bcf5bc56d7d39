//! Integration tests for the [`keyward_mail::Mailer`] transports: the dev outbox
//! file, SMTP failure classification, and a mailer over a caller's own
//! [`keyward_mail::Transport`]. What each TLS mode does is in `tls_modes.rs`,
//! the in-memory test sink in `sink.rs`.

use std::time::Duration;

use keyward_mail::{MailError, MailTemplates, Mailer, SignInCodeMail, TlsMode, TransportSettings};

fn unique_dir(tag: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    std::env::temp_dir().join(format!("keyward-mail-{tag}-{}-{nanos}", std::process::id()))
}

fn sign_in_mail(to: &str, code: &str) -> Result<keyward_mail::OutgoingMail, MailError> {
    MailTemplates::new()?.sign_in_code(
        to,
        &SignInCodeMail {
            app_name: "Demo",
            code,
            minutes_valid: 15,
            requested_at: "25 Nov 2026 14:03 UTC",
            issuer: "http://localhost:8080",
            link: "http://localhost:8080/login/link?token=T0KEN",
            requested_from: "203.0.113.0/24",
        },
    )
}

#[tokio::test]
async fn dev_transport_appends_readable_messages() -> Result<(), Box<dyn std::error::Error>> {
    let dir = unique_dir("dev");
    let outbox = dir.join("nested").join("outbox.log");
    let mailer = Mailer::new(TransportSettings::Dev { outbox: outbox.clone() }, "Keyward <no-reply@example.com>")?;
    mailer.send(&sign_in_mail("alice@example.com", "ABCD-EFGH")?).await?;
    mailer.clone().send(&sign_in_mail("bob@example.com", "WXYZ-2345")?).await?;

    let content = std::fs::read_to_string(&outbox)?;
    assert!(content.lines().any(|l| l == "ABCD-EFGH"), "{content}");
    assert!(content.lines().any(|l| l == "WXYZ-2345"), "{content}");
    assert!(content.contains("To: alice@example.com"));
    assert!(content.contains("Subject: Your sign-in code for Demo: ABCD-EFGH"));
    assert_eq!(content.matches("======== keyward mail ").count(), 2);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn invalid_addresses_are_rejected() -> Result<(), Box<dyn std::error::Error>> {
    let outbox = unique_dir("bad").join("outbox.log");
    let err = Mailer::new(TransportSettings::Dev { outbox: outbox.clone() }, "not an address");
    assert!(matches!(err, Err(MailError::InvalidAddress { field: "from", .. })));

    let mailer = Mailer::new(TransportSettings::Dev { outbox: outbox.clone() }, "kw@example.com")?;
    let err = mailer.send(&sign_in_mail("nope", "ABCD-EFGH")?).await;
    match err {
        Err(e @ MailError::InvalidAddress { field: "to", .. }) => assert!(!e.is_transient()),
        other => return Err(format!("unexpected: {other:?}").into()),
    }
    assert!(!outbox.exists());
    Ok(())
}

#[tokio::test]
async fn smtp_to_closed_port_is_transient() -> Result<(), Box<dyn std::error::Error>> {
    // Reserve a port, then free it so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mailer = Mailer::new(
        TransportSettings::Smtp {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            username: None,
            password: None,
            timeout: Duration::from_secs(2),
        },
        "kw@example.com",
    )?;
    let mail = sign_in_mail("alice@example.com", "ABCD-EFGH")?;
    let err = match mailer.send(&mail).await {
        Err(e) => e,
        Ok(()) => return Err("sending to a closed port succeeded".into()),
    };
    assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
    assert!(err.is_transient(), "{err:?}");
    let shown = err.to_string();
    assert!(!shown.contains("ABCD-EFGH"), "{shown}");
    Ok(())
}

#[test]
fn smtp_outside_runtime_is_an_error() {
    let result = Mailer::new(
        TransportSettings::Smtp {
            host: "127.0.0.1".into(),
            port: 25,
            tls: TlsMode::None,
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
        },
        "kw@example.com",
    );
    assert!(matches!(result, Err(MailError::NoRuntime)));
}

#[tokio::test]
async fn f12_debug_of_transport_settings_and_the_mailer_shows_no_password() -> Result<(), MailError> {
    let password = "smtp-pass-Wm9vcCBaaW5n";
    let settings = TransportSettings::Smtp {
        host: "smtp.example.com".into(),
        port: 587,
        tls: TlsMode::StartTls,
        username: Some("keyward".into()),
        password: Some(password.into()),
        timeout: Duration::from_secs(5),
    };
    let shown = format!("{settings:?} {settings:#?}");
    assert!(!shown.contains(password), "Debug shows the password: {shown}");
    assert!(shown.contains("smtp.example.com") && shown.contains("keyward"), "{shown}");
    let mailer = Mailer::new(settings, "kw@example.com")?;
    let shown = format!("{mailer:?}");
    assert!(!shown.contains(password), "{shown}");
    Ok(())
}

/// A transport that refuses everything, to show the mailer only sees the trait.
struct Refusing;

impl keyward_mail::Transport for Refusing {
    fn kind(&self) -> &'static str {
        "refusing"
    }

    fn send<'a>(&'a self, envelope: keyward_mail::Envelope<'a>) -> keyward_mail::SendFuture<'a> {
        let path = std::path::PathBuf::from(envelope.to.email.to_string());
        Box::pin(async move { Err(MailError::Outbox { path, source: std::io::Error::other("refused") }) })
    }
}

#[tokio::test]
async fn a_mailer_sends_through_any_transport_and_returns_its_error() -> Result<(), Box<dyn std::error::Error>> {
    let mailer = Mailer::with_transport(std::sync::Arc::new(Refusing), "Keyward <kw@example.com>")?;
    assert_eq!(mailer.transport_kind(), "refusing");
    assert!(format!("{mailer:?}").contains("\"refusing\""), "{mailer:?}");
    match mailer.send(&sign_in_mail("alice@example.com", "ABCD-EFGH")?).await {
        Err(MailError::Outbox { path, .. }) => assert_eq!(path, std::path::PathBuf::from("alice@example.com")),
        other => return Err(format!("unexpected: {other:?}").into()),
    }
    assert!(matches!(
        Mailer::with_transport(std::sync::Arc::new(Refusing), "nobody"),
        Err(MailError::InvalidAddress { field: "from", .. })
    ));
    Ok(())
}

#[tokio::test]
async fn settings_build_the_transport_they_name() -> Result<(), Box<dyn std::error::Error>> {
    let dev = TransportSettings::Dev { outbox: unique_dir("kind").join("outbox.log") }.build()?;
    assert_eq!(dev.kind(), "dev");
    let smtp = TransportSettings::Smtp {
        host: "smtp.example.com".into(),
        port: 587,
        tls: TlsMode::StartTls,
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
    }
    .build()?;
    assert_eq!(smtp.kind(), "smtp");
    Ok(())
}
