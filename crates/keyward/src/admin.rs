//! `keyward mail test` and `keyward users …`: operator commands that work on the same
//! database and mail settings as the server, while it runs.

use crate::load_config;
use crate::serve::{mail_settings, open_database};
use clap::Subcommand;
use keyward_core::Clock;
use keyward_core::config::{Config, MailTransport};
use keyward_core::email::Email;
use keyward_mail::{MailTemplates, Mailer, OutgoingMail};
use keyward_service::users::{self, Invited};
use std::path::Path;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum MailCommand {
    /// Send a test message with the configured transport and report what the server said.
    Test { address: String },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create an account for EMAIL (the way in when signup = "invite_only") and email an invitation.
    Invite {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Create the account without sending the invitation email.
        #[arg(long)]
        no_email: bool,
    },
    /// Stop an account from signing in (the sign-in pages answer as for an unknown address).
    Disable { email: String },
    /// Let a disabled account sign in again.
    Enable { email: String },
}

fn parse_email(text: &str) -> Result<Email, ExitCode> {
    Email::parse(text).map_err(|e| {
        eprintln!("error: {text:?} is not an email address: {e}");
        ExitCode::from(2)
    })
}

/// Sends one message on a small runtime (lettre's pool needs one).
fn send(config: &Config, mail: &OutgoingMail) -> Result<(), ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the mail runtime: {e}");
        ExitCode::from(1)
    })?;
    rt.block_on(async {
        let mailer = Mailer::new(mail_settings(config), &config.mail_from).map_err(|e| {
            eprintln!("error: mail settings: {e}");
            ExitCode::from(2)
        })?;
        mailer.send(mail).await.map_err(|e| {
            let kind = if e.is_transient() {
                "a temporary failure: try again later"
            } else {
                "a permanent failure: check the settings or the address"
            };
            eprintln!("error: the message was not sent ({kind}): {e}");
            ExitCode::from(1)
        })
    })
}

fn transport_description(config: &Config) -> String {
    match &config.mail {
        MailTransport::Dev { outbox } => format!("the dev transport (written to {})", outbox.display()),
        MailTransport::Smtp { host, port, tls, .. } => format!("SMTP {host}:{port} ({tls:?})"),
    }
}

pub fn mail(path: &Path, cmd: MailCommand) -> Result<(), ExitCode> {
    let config = load_config(path)?;
    let MailCommand::Test { address } = cmd;
    let to = parse_email(&address)?;
    let text = format!("This is a test message from Keyward at {}. If you can read it, sign-in emails will arrive too.\n", config.issuer);
    let html =
        format!("<p>This is a test message from Keyward at {}. If you can read it, sign-in emails will arrive too.</p>", config.issuer);
    let mail = OutgoingMail { to: to.as_str().to_owned(), subject: "Keyward test message".into(), text, html };
    println!("Sending a test message to {to} through {} …", transport_description(&config));
    send(&config, &mail)?;
    println!("sent: the mail server accepted the message");
    Ok(())
}

pub fn users(path: &Path, cmd: UsersCommand) -> Result<(), ExitCode> {
    let config = load_config(path)?;
    let pool = open_database(&config)?;
    let mut conn = pool.get().map_err(|e| {
        eprintln!("error: cannot connect to the database: {e}");
        ExitCode::from(1)
    })?;
    let now = keyward_core::SystemClock.unix();
    let failed = |e: keyward_service::ServiceError| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    };
    match cmd {
        UsersCommand::Invite { email, name, no_email } => {
            let email = parse_email(&email)?;
            match users::invite(&mut conn, &email, name.as_deref(), now).map_err(failed)? {
                Invited::Created(u) => println!("created account {} for {email}", u.id),
                Invited::AlreadyThere(u) => println!("{email} already has account {}", u.id),
            }
            if !no_email {
                let templates = MailTemplates::new().map_err(|e| {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                })?;
                let mail = templates.invitation(email.as_str(), &config.issuer, "An administrator").map_err(|e| {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                })?;
                send(&config, &mail)?;
                println!("invitation sent to {email}");
            }
        }
        UsersCommand::Disable { email } => {
            let email = parse_email(&email)?;
            if !users::set_disabled(&mut conn, &email, true, now).map_err(failed)? {
                eprintln!("error: no account has the address {email}");
                return Err(ExitCode::from(1));
            }
            println!("disabled {email}: it can no longer sign in");
        }
        UsersCommand::Enable { email } => {
            let email = parse_email(&email)?;
            if !users::set_disabled(&mut conn, &email, false, now).map_err(failed)? {
                eprintln!("error: no account has the address {email}");
                return Err(ExitCode::from(1));
            }
            println!("enabled {email}");
        }
    }
    Ok(())
}
