//! Tests for [`keyward_testkit::smtp::SmtpSink`], driven by lettre's real SMTP client.

use std::time::Duration;

use keyward_testkit::smtp::SmtpSink;
use lettre::message::MultiPart;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn transport(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(sink.port()).timeout(Some(Duration::from_secs(5))).build()
}

fn message(to: &str, subject: &str, text: &str, html: &str) -> Result<Message, Box<dyn std::error::Error>> {
    Ok(Message::builder()
        .from("Keyward <kw@example.com>".parse()?)
        .to(to.parse()?)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(text.to_owned(), html.to_owned()))?)
}

#[tokio::test]
async fn receives_and_decodes_multipart_mail() -> TestResult {
    let sink = SmtpSink::start().await?;
    let smtp = transport(&sink);
    // Non-ASCII and a leading dot force quoted-printable/base64 and dot-stuffing.
    let text = "Your code:\n\nABCD-EFGH\n\n.leading dot line\nIf you didn't try — ignore this. Ünïcödé";
    let html = "<p>Your code: <b>ABCD-EFGH</b> — ok</p>";
    smtp.send(message("Alice@Example.com", "Código: ABCD-EFGH", text, html)?).await?;

    let mail = sink.wait_for_mail_to("alice@example.com", 0, Duration::from_secs(5)).await?;
    assert_eq!(mail.from, "kw@example.com");
    assert_eq!(mail.to, vec!["Alice@Example.com".to_owned()]);
    assert_eq!(mail.subject, "Código: ABCD-EFGH");
    assert!(mail.text.lines().any(|l| l == "ABCD-EFGH"), "{:?}", mail.text);
    assert!(mail.text.contains(".leading dot line"), "{:?}", mail.text);
    assert!(mail.text.contains("Ünïcödé"), "{:?}", mail.text);
    assert!(mail.html.contains("<b>ABCD-EFGH</b> — ok"), "{:?}", mail.html);
    assert!(mail.raw.contains("multipart/alternative"));
    assert_eq!(sink.messages().len(), 1);
    Ok(())
}

#[tokio::test]
async fn waits_for_the_next_mail() -> TestResult {
    let sink = SmtpSink::start().await?;
    let smtp = transport(&sink);
    smtp.send(message("bob@example.com", "first", "one", "<p>one</p>")?).await?;
    smtp.send(message("carol@example.com", "other", "x", "<p>x</p>")?).await?;
    let first = sink.wait_for_mail_to("bob@example.com", 0, Duration::from_secs(5)).await?;
    assert_eq!(first.subject, "first");

    // Nothing new yet: times out.
    let none = sink.wait_for_mail_to("bob@example.com", 1, Duration::from_millis(200)).await;
    assert!(none.is_err());

    let waiter = sink.wait_for_mail_to("bob@example.com", 1, Duration::from_secs(5));
    let sender = async {
        tokio::time::sleep(Duration::from_millis(100)).await; // black-box: the wait is tested against a mail sent later
        smtp.send(message("bob@example.com", "second", "two", "<p>two</p>")?).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    let (second, sent) = tokio::join!(waiter, sender);
    sent?;
    assert_eq!(second?.subject, "second");
    assert_eq!(sink.messages().len(), 3);
    Ok(())
}

#[tokio::test]
async fn concurrent_connections() -> TestResult {
    let sink = SmtpSink::start().await?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let smtp = transport(&sink);
        let msg = message(&format!("user{i}@example.com"), &format!("n{i}"), "t", "<p>h</p>")?;
        tasks.spawn(async move { smtp.send(msg).await.map(|_| ()) });
    }
    while let Some(res) = tasks.join_next().await {
        res??;
    }
    assert_eq!(sink.messages().len(), 8);
    Ok(())
}

#[tokio::test]
async fn reject_mode_fails_sends_permanently() -> TestResult {
    let sink = SmtpSink::start().await?;
    let smtp = transport(&sink);
    sink.set_reject(true);
    let err = match smtp.send(message("dave@example.com", "s", "t", "<p>h</p>")?).await {
        Err(err) => err,
        Ok(_) => return Err("send succeeded in reject mode".into()),
    };
    assert!(err.is_permanent(), "{err:?}");
    assert!(sink.messages().is_empty());

    sink.set_reject(false);
    smtp.send(message("dave@example.com", "s", "t", "<p>h</p>")?).await?;
    sink.wait_for_mail_to("dave@example.com", 0, Duration::from_secs(5)).await?;
    Ok(())
}
