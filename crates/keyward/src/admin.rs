//! `keyward mail test` and `keyward users …`: operator commands that work on the same
//! database and mail settings as the server, while it runs. Commands that change an account
//! record an `admin_action` audit event; none prints a secret or a session hash.

use crate::load_config;
use crate::serve::{mail_settings, open_database};
use clap::Subcommand;
use keyward_core::Clock;
use keyward_core::config::{Config, MailTransport};
use keyward_core::email::Email;
use keyward_mail::{MailTemplates, Mailer, OutgoingMail};
use keyward_service::users::{self, Invited};
use secrecy::ExposeSecret;
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
    /// List accounts: id, address, created, disabled, passkeys, last sign-in.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only disabled accounts.
        #[arg(long)]
        disabled: bool,
    },
    /// Show one account: passkeys, live sessions, apps consented to, live grants, recovery codes left.
    Show {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// The account's live browser sessions.
    Sessions {
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Sign the account out everywhere: end every session, revoke every grant (refresh and
    /// access tokens die) and send back-channel logout to apps that registered it.
    Revoke { email: String },
    /// Delete the account with its passkeys, sessions, recovery codes, grants and consents.
    Delete {
        email: String,
        /// Really delete (without it, nothing changes).
        #[arg(long)]
        yes: bool,
    },
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
    let conn = pool.get().map_err(|e| {
        eprintln!("error: cannot connect to the database: {e}");
        ExitCode::from(1)
    })?;
    let mut cx = UsersCx { config, pool, conn, now: keyward_core::SystemClock.unix() };
    match cmd {
        UsersCommand::Invite { email, name, no_email } => users_invite(&mut cx, &email, name.as_deref(), no_email),
        UsersCommand::Disable { email } => users_set_disabled(&mut cx, &email, true),
        UsersCommand::Enable { email } => users_set_disabled(&mut cx, &email, false),
        UsersCommand::List { json, disabled } => users_list(&mut cx, json, disabled),
        UsersCommand::Show { email, json } => {
            let email = parse_email(&email)?;
            let d = users_detail(&mut cx, &email)?;
            print_detail(&cx.config, &d, json);
            Ok(())
        }
        UsersCommand::Sessions { email, json } => users_sessions(&mut cx, &email, json),
        UsersCommand::Revoke { email } => users_revoke(cx, &email),
        UsersCommand::Delete { email, yes } => users_delete(cx, &email, yes),
    }
}

/// What every `users` command works with.
struct UsersCx {
    config: Config,
    pool: keyward_store::Pool,
    conn: keyward_store::PooledConn,
    now: i64,
}

fn failed(e: keyward_service::ServiceError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(1)
}

fn users_invite(cx: &mut UsersCx, email: &str, name: Option<&str>, no_email: bool) -> Result<(), ExitCode> {
    let email = parse_email(email)?;
    match users::invite(&mut cx.conn, &email, name, cx.now).map_err(failed)? {
        Invited::Created(u) => println!("created account {} for {email}", u.id),
        Invited::AlreadyThere(u) => println!("{email} already has account {}", u.id),
    }
    if no_email {
        return Ok(());
    }
    let templates = MailTemplates::new().map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })?;
    let mail = templates.invitation(email.as_str(), &cx.config.issuer, "An administrator").map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })?;
    send(&cx.config, &mail)?;
    println!("invitation sent to {email}");
    Ok(())
}

fn users_set_disabled(cx: &mut UsersCx, email: &str, disabled: bool) -> Result<(), ExitCode> {
    let email = parse_email(email)?;
    if !users::set_disabled(&mut cx.conn, &email, disabled, cx.now).map_err(failed)? {
        eprintln!("error: no account has the address {email}");
        return Err(ExitCode::from(1));
    }
    if disabled {
        println!("disabled {email}: it can no longer sign in");
    } else {
        println!("enabled {email}");
    }
    Ok(())
}

fn users_list(cx: &mut UsersCx, json: bool, disabled: bool) -> Result<(), ExitCode> {
    let rows = users::list(&mut cx.conn, disabled).map_err(failed)?;
    if json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({ "id": r.user.id, "email": r.user.email, "created_at": r.user.created_at,
                    "disabled_at": r.user.disabled_at, "passkeys": r.passkeys, "last_sign_in_at": r.last_sign_in })
            })
            .collect();
        println!("{}", serde_json::Value::Array(out));
        return Ok(());
    }
    println!("{:<36}  {:<32}  {:<23}  {:<23}  {:>8}  LAST SIGN-IN", "ID", "EMAIL", "CREATED", "DISABLED", "PASSKEYS");
    for r in &rows {
        println!(
            "{:<36}  {:<32}  {:<23}  {:<23}  {:>8}  {}",
            r.user.id,
            r.user.email,
            utc(r.user.created_at),
            r.user.disabled_at.map(utc).unwrap_or_else(|| "-".into()),
            r.passkeys,
            r.last_sign_in.map(utc).unwrap_or_else(|| "never".into())
        );
    }
    let n = rows.len();
    println!("{n} account{}", if n == 1 { "" } else { "s" });
    Ok(())
}

fn users_detail(cx: &mut UsersCx, email: &Email) -> Result<users::UserDetail, ExitCode> {
    users::detail(&mut cx.conn, email, cx.now, cx.config.session_idle_seconds).map_err(failed)?.ok_or_else(|| no_account(email))
}

fn users_sessions(cx: &mut UsersCx, email: &str, json: bool) -> Result<(), ExitCode> {
    let email = parse_email(email)?;
    let user = users::find(&mut cx.conn, &email).map_err(failed)?.ok_or_else(|| no_account(&email))?;
    let sessions = users::live_sessions(&mut cx.conn, &user.id, cx.now, cx.config.session_idle_seconds).map_err(failed)?;
    if json {
        println!("{}", serde_json::json!(sessions));
    } else {
        print_sessions(&sessions);
        println!("{} live session{} for {email}", sessions.len(), if sessions.len() == 1 { "" } else { "s" });
    }
    Ok(())
}

fn users_revoke(cx: UsersCx, email: &str) -> Result<(), ExitCode> {
    let email = parse_email(email)?;
    let UsersCx { config, pool, conn, .. } = cx;
    drop(conn);
    let kw = keyward(config, pool)?;
    let ended = kw.sign_out_everywhere(&email).map_err(failed)?.ok_or_else(|| no_account(&email))?;
    println!(
        "signed {email} out everywhere: {} session{} ended, {} grant{} revoked (their refresh and access tokens no longer work), {} back-channel logout{} queued",
        ended.sessions,
        plural(ended.sessions),
        ended.grants,
        plural(ended.grants),
        ended.logout_tokens,
        plural(ended.logout_tokens)
    );
    Ok(())
}

fn users_delete(mut cx: UsersCx, email: &str, yes: bool) -> Result<(), ExitCode> {
    let email = parse_email(email)?;
    let d = users_detail(&mut cx, &email)?;
    if !yes {
        eprintln!(
            "error: this would delete account {} ({email}) with {} passkey{}, {} live session{}, {} recovery code{}, {} app consent{} and its grants; it cannot be undone.\n       Nothing was changed: add --yes to delete it.",
            d.user.id,
            d.passkeys.len(),
            plural(d.passkeys.len()),
            d.sessions.len(),
            plural(d.sessions.len()),
            d.recovery_codes_left,
            plural(d.recovery_codes_left as usize),
            d.consents.len(),
            plural(d.consents.len())
        );
        return Err(ExitCode::from(1));
    }
    let UsersCx { config, pool, conn, .. } = cx;
    drop(conn);
    let kw = keyward(config, pool)?;
    let deleted = kw.delete_account(&email).map_err(failed)?.ok_or_else(|| no_account(&email))?;
    println!(
        "deleted account {} ({email}): {} session{} ended, {} grant{} revoked, {} passkey{}, {} recovery code{} and {} consent{} removed, {} back-channel logout{} queued",
        d.user.id,
        deleted.ended.sessions,
        plural(deleted.ended.sessions),
        deleted.ended.grants,
        plural(deleted.ended.grants),
        deleted.passkeys,
        plural(deleted.passkeys),
        deleted.recovery_codes,
        plural(deleted.recovery_codes as usize),
        deleted.consents,
        plural(deleted.consents),
        deleted.ended.logout_tokens,
        plural(deleted.ended.logout_tokens)
    );
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn no_account(email: &Email) -> ExitCode {
    eprintln!("error: no account has the address {email} (`keyward users list` shows every account)");
    ExitCode::from(1)
}

/// A time in UTC, to the second: `2026-11-26 14:05:09 UTC`.
pub fn utc(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// A service instance for the commands that end sessions: they sign back-channel logout
/// tokens, so they need the signing keys (and so the master key).
fn keyward(config: Config, pool: keyward_store::Pool) -> Result<keyward_service::Keyward, ExitCode> {
    use keyward_service::{KeyRing, Keyward, MasterKey};
    use std::sync::Arc;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        eprintln!("error: {what}: {e}");
        ExitCode::from(1)
    };
    let (master, _) =
        MasterKey::resolve(config.master_key.as_ref().map(|k| k.expose_secret()), &config.data_dir).map_err(|e| fail("master key", &e))?;
    let mut conn = pool.get().map_err(|e| fail("cannot connect to the database", &e))?;
    let keys = KeyRing::load_or_create(&mut conn, &master, keyward_core::SystemClock.unix())
        .map_err(|e| fail("cannot load the signing keys", &e))?;
    drop(conn);
    Keyward::new(Arc::new(config), pool, Arc::new(keys), Arc::new(keyward_core::SystemClock), &master)
        .map_err(|e| fail("cannot set up the service", &e))
}

fn print_sessions(sessions: &[users::SessionInfo]) {
    println!("  {:<22}  {:<23}  {:<23}  {:<23}  AMR", "SID", "SIGNED IN", "LAST SEEN", "EXPIRES");
    for s in sessions {
        println!("  {:<22}  {:<23}  {:<23}  {:<23}  {}", s.sid, utc(s.created_at), utc(s.last_seen_at), utc(s.expires_at), s.amr.join(" "));
    }
}

fn print_detail(config: &Config, d: &users::UserDetail, json: bool) {
    let u = &d.user;
    let app_name = |id: &str| config.client(id).map(|c| c.name.clone()).unwrap_or_else(|| format!("{id} (no longer configured)"));
    if json {
        let consents: Vec<_> = d
            .consents
            .iter()
            .map(|c| serde_json::json!({ "client_id": c.client_id, "client_name": app_name(&c.client_id), "scope": c.scope, "granted_at": c.granted_at }))
            .collect();
        let out = serde_json::json!({
            "id": u.id, "email": u.email, "email_verified": u.email_verified, "name": u.name, "created_at": u.created_at,
            "disabled_at": u.disabled_at, "email_sign_in": u.email_sign_in, "last_sign_in_at": d.last_sign_in,
            "passkeys": d.passkeys, "sessions": d.sessions, "consents": consents, "grants": d.grants,
            "recovery_codes_left": d.recovery_codes_left,
        });
        println!("{out}");
        return;
    }
    println!("account        {}", u.id);
    println!("email          {}{}", u.email, if u.email_verified { "" } else { " (not verified yet)" });
    if let Some(name) = &u.name {
        println!("name           {name}");
    }
    println!("created        {}", utc(u.created_at));
    println!("status         {}", u.disabled_at.map(|t| format!("disabled since {}", utc(t))).unwrap_or_else(|| "enabled".into()));
    println!("email sign-in  {}", if u.email_sign_in { "on" } else { "off (passkeys and recovery codes only)" });
    println!("last sign-in   {}", d.last_sign_in.map(utc).unwrap_or_else(|| "never".into()));
    println!("recovery codes {} left", d.recovery_codes_left);
    println!("\npasskeys ({})", d.passkeys.len());
    if !d.passkeys.is_empty() {
        println!("  {:<32}  {:<23}  {:<23}  KIND", "NAME", "ADDED", "LAST USED");
        for p in &d.passkeys {
            println!(
                "  {:<32}  {:<23}  {:<23}  {}",
                p.name,
                utc(p.created_at),
                p.last_used_at.map(utc).unwrap_or_else(|| "never".into()),
                if p.synced { "synced" } else { "this device only" }
            );
        }
    }
    println!("\nlive sessions ({})", d.sessions.len());
    if !d.sessions.is_empty() {
        print_sessions(&d.sessions);
    }
    println!("\napps consented to ({})", d.consents.len());
    for c in &d.consents {
        println!("  {:<24}  {:<24}  since {}  scope: {}", c.client_id, app_name(&c.client_id), utc(c.granted_at), c.scope);
    }
    println!("\nlive grants ({})", d.grants.iter().map(|g| g.grants).sum::<usize>());
    for g in &d.grants {
        println!(
            "  {:<24}  {} grant{}, newest {}, scope: {}",
            g.client_id,
            g.grants,
            plural(g.grants),
            utc(g.newest_created_at),
            g.scopes.join(" ")
        );
    }
}
