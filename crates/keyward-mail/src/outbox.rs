//! The development [`Transport`]: appends every message, readable, to an outbox
//! file (e.g. `./data/outbox.log`) so the code can be read without an SMTP server.

use std::path::{Path, PathBuf};

use lettre::message::Mailbox;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::{Envelope, MailError, OutgoingMail, SendFuture, Transport};

/// Appends to one outbox file; a lock keeps concurrent messages whole.
pub(crate) struct OutboxTransport {
    outbox: PathBuf,
    lock: Mutex<()>,
}

impl OutboxTransport {
    pub(crate) fn new(outbox: PathBuf) -> OutboxTransport {
        OutboxTransport { outbox, lock: Mutex::new(()) }
    }
}

impl Transport for OutboxTransport {
    fn kind(&self) -> &'static str {
        "dev"
    }

    fn send<'a>(&'a self, envelope: Envelope<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let _guard = self.lock.lock().await;
            let mail = envelope.mail;
            append_to_outbox(&self.outbox, envelope.from, mail).await?;
            // Recipient and subject only: the body holds a sign-in code.
            tracing::info!(to = ?mail.to, subject = ?mail.subject, outbox = %self.outbox.display(), "dev mail written to outbox");
            Ok(())
        })
    }
}

/// Appends one message, framed by delimiter lines, to the outbox file.
async fn append_to_outbox(path: &Path, from: &Mailbox, mail: &OutgoingMail) -> Result<(), MailError> {
    let io_err = |source| MailError::Outbox { path: path.to_owned(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent).await.map_err(io_err)?;
    }
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("unknown time"));
    let entry = format!(
        "======================== keyward mail {now} ========================\n\
         From: {from}\n\
         To: {to}\n\
         Subject: {subject}\n\
         \n\
         {text}\n\
         ------------------------ HTML alternative ------------------------\n\
         {html}\n\
         ======================== end of mail ========================\n\n",
        to = mail.to,
        subject = mail.subject,
        text = mail.text.trim_end(),
        html = mail.html.trim_end(),
    );
    let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await.map_err(io_err)?;
    file.write_all(entry.as_bytes()).await.map_err(io_err)?;
    file.flush().await.map_err(io_err)?;
    Ok(())
}
