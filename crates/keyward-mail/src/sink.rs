//! The in-memory test sink (feature `test-sink`): a [`Transport`] that records
//! every message so in-process tests can read the mail the application sent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::{Envelope, SendFuture, Transport};

/// One message the sink received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    /// The sender, as formatted on the wire (`Name <addr>`).
    pub from: String,
    /// The recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Records mail in memory. Cheap to clone: clones share the same messages, so a
/// test keeps one and hands another to [`crate::Mailer::with_transport`].
#[derive(Debug, Clone)]
pub struct TestSink {
    sent: Arc<watch::Sender<Vec<SentMail>>>,
}

impl Default for TestSink {
    fn default() -> Self {
        TestSink::new()
    }
}

impl TestSink {
    /// An empty sink.
    pub fn new() -> TestSink {
        TestSink { sent: Arc::new(watch::Sender::new(Vec::new())) }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<SentMail> {
        self.sent.borrow().clone()
    }

    /// How many messages were received.
    pub fn len(&self) -> usize {
        self.sent.borrow().len()
    }

    /// Whether no message was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest message to `to`, if any.
    pub fn last_to(&self, to: &str) -> Option<SentMail> {
        self.sent.borrow().iter().rev().find(|m| m.to == to).cloned()
    }

    /// Waits (woken by each delivery, no polling) until at least `count`
    /// messages arrived, and returns them all; `None` if `within` passes first.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Option<Vec<SentMail>> {
        let mut rx = self.sent.subscribe();
        let waited = tokio::time::timeout(within, rx.wait_for(|sent| sent.len() >= count)).await;
        match waited {
            Ok(Ok(sent)) => Some(sent.clone()),
            _ => None,
        }
    }
}

impl Transport for TestSink {
    fn kind(&self) -> &'static str {
        "test-sink"
    }

    fn send<'a>(&'a self, envelope: Envelope<'a>) -> SendFuture<'a> {
        let mail = envelope.mail;
        let sent = SentMail {
            from: envelope.from.to_string(),
            to: envelope.to.email.to_string(),
            subject: mail.subject.clone(),
            text: mail.text.clone(),
            html: mail.html.clone(),
        };
        self.sent.send_modify(|all| all.push(sent));
        Box::pin(async { Ok(()) })
    }
}
