//! The in-memory [`keyward_mail::TestSink`] transport (feature `test-sink`): it
//! records what a [`Mailer`] sends and wakes waiters on each delivery.

use std::sync::Arc;
use std::time::Duration;

use keyward_mail::{MailError, Mailer, OutgoingMail, TestSink};

fn mail(to: &str, code: &str) -> OutgoingMail {
    OutgoingMail {
        to: to.into(),
        subject: format!("Your sign-in code: {code}"),
        text: format!("Your code: {code}"),
        html: format!("<p>Your code: {code}</p>"),
    }
}

fn mailer(sink: &TestSink) -> Result<Mailer, MailError> {
    Mailer::with_transport(Arc::new(sink.clone()), "Keyward <no-reply@example.com>")
}

#[tokio::test]
async fn test_sink_records_each_message_in_order_with_sender_and_recipient() -> Result<(), MailError> {
    let sink = TestSink::new();
    let mailer = mailer(&sink)?;
    assert_eq!(mailer.transport_kind(), "test-sink");
    assert!(sink.is_empty());
    mailer.send(&mail("alice@example.com", "ABCD-EFGH")).await?;
    mailer.clone().send(&mail(" bob@example.com ", "WXYZ-2345")).await?;

    let sent = sink.messages();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].from, "Keyward <no-reply@example.com>");
    assert_eq!(sent[0].to, "alice@example.com");
    assert_eq!(sent[0].subject, "Your sign-in code: ABCD-EFGH");
    assert_eq!(sent[0].text, "Your code: ABCD-EFGH");
    assert_eq!(sent[0].html, "<p>Your code: ABCD-EFGH</p>");
    assert_eq!(sent[1].to, "bob@example.com", "the parsed recipient, trimmed");
    assert_eq!(sink.last_to("bob@example.com").map(|m| m.text), Some("Your code: WXYZ-2345".to_owned()));
    assert_eq!(sink.last_to("carol@example.com"), None);
    Ok(())
}

#[tokio::test]
async fn test_sink_never_sees_a_message_with_a_bad_recipient() -> Result<(), MailError> {
    let sink = TestSink::new();
    let err = mailer(&sink)?.send(&mail("not an address", "ABCD-EFGH")).await;
    assert!(matches!(err, Err(MailError::InvalidAddress { field: "to", .. })), "{err:?}");
    assert!(sink.is_empty(), "{:?}", sink.messages());
    Ok(())
}

#[tokio::test]
async fn test_sink_wait_for_wakes_when_mail_sent_from_another_task_arrives() -> Result<(), Box<dyn std::error::Error>> {
    let sink = TestSink::new();
    let mailer = mailer(&sink)?;
    let waiter = tokio::spawn({
        let sink = sink.clone();
        async move { sink.wait_for(2, Duration::from_secs(10)).await }
    });
    let sender = tokio::spawn(async move {
        mailer.send(&mail("alice@example.com", "ABCD-EFGH")).await?;
        mailer.send(&mail("alice@example.com", "WXYZ-2345")).await
    });
    sender.await??;
    let sent = waiter.await?.ok_or("the waiter was not woken")?;
    assert_eq!(sent.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["Your code: ABCD-EFGH", "Your code: WXYZ-2345"]);
    Ok(())
}

#[tokio::test]
async fn test_sink_wait_for_gives_up_when_too_little_arrives() -> Result<(), MailError> {
    let sink = TestSink::new();
    mailer(&sink)?.send(&mail("alice@example.com", "ABCD-EFGH")).await?;
    assert_eq!(sink.wait_for(1, Duration::from_millis(1)).await.map(|m| m.len()), Some(1), "already there: no wait");
    assert_eq!(sink.wait_for(2, Duration::from_millis(20)).await, None);
    assert_eq!(sink.len(), 1);
    Ok(())
}
