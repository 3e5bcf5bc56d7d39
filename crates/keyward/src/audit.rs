//! `keyward audit tail|search`: read the audit log (sign-ins, passkey and recovery changes,
//! logouts, revocations, operator commands) from the database the server writes it to.
//! Events are printed oldest first: time (UTC), kind, the account's address when the account
//! still exists, and the event's detail as compact JSON.

use crate::admin::utc;
use crate::load_config;
use crate::serve::open_database;
use clap::Subcommand;
use keyward_core::Clock;
use keyward_core::email::Email;
use keyward_store::repo::audit::{self, EventWithEmail, Filter};
use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// The newest events, oldest first; with --follow, keep printing new ones (Ctrl-C stops).
    Tail {
        /// How many events.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        lines: i64,
        /// Check for new events every second and print them as they come.
        #[arg(long, short)]
        follow: bool,
        /// JSON: an array, or with --follow one object per line.
        #[arg(long)]
        json: bool,
    },
    /// Events of one account, of one kind, or since a moment, oldest first.
    Search {
        /// The account's email address.
        #[arg(long)]
        user: Option<String>,
        /// An event kind, e.g. signed_in, signed_out, admin_action, grant_revoked.
        #[arg(long)]
        kind: Option<String>,
        /// How far back: a number and a unit, s, m, h, d or w (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many (the newest).
        #[arg(short = 'n', long = "limit", default_value_t = 1000)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

fn err(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {what}: {e}");
    ExitCode::from(1)
}

/// `24h`, `7d`, `30m`, `90s`, `2w` → seconds.
pub fn parse_duration(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit)
}

fn as_json((e, email): &EventWithEmail) -> serde_json::Value {
    serde_json::json!({
        "id": e.id, "at": e.at, "time": utc(e.at), "kind": e.kind, "user_id": e.user_id, "email": email,
        "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_else(|_| serde_json::Value::String(e.detail.clone())),
        "client_addr": e.client_addr,
    })
}

fn line((e, email): &EventWithEmail) -> String {
    let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_else(|_| serde_json::Value::String(e.detail.clone()));
    // A deleted account's address survives in its admin_action detail.
    let who = email
        .clone()
        .or_else(|| detail["email"].as_str().map(str::to_owned))
        .or_else(|| e.user_id.as_ref().map(|id| format!("user {id}")))
        .unwrap_or_else(|| "-".into());
    format!("{}  {:<26}  {:<32}  {detail}", utc(e.at), e.kind, who)
}

fn print(rows: &[EventWithEmail], json: bool) {
    if json {
        println!("{}", serde_json::Value::Array(rows.iter().map(as_json).collect()));
    } else {
        for r in rows {
            println!("{}", line(r));
        }
    }
}

pub fn run(path: &Path, cmd: AuditCommand) -> Result<(), ExitCode> {
    let config = load_config(path)?;
    let pool = open_database(&config)?;
    let mut conn = pool.get().map_err(|e| err("cannot connect to the database", e))?;
    let now = keyward_core::SystemClock.unix();
    match cmd {
        AuditCommand::Tail { lines, follow, json } => {
            let rows = audit::search(&mut conn, &Filter::default(), lines.max(0)).map_err(|e| err("cannot read the audit log", e))?;
            if !follow {
                print(&rows, json);
                return Ok(());
            }
            // Follow: remember the newest second printed and the events already printed in it,
            // then ask for everything from that second on, every second.
            let mut last = rows.last().map(|(e, _)| e.at).unwrap_or(now);
            // Everything already in the log at that second counts as seen (printed or not, as
            // with `-n 0`): only events recorded from now on are new.
            let mut seen: HashSet<String> = audit::from(&mut conn, last, 100_000)
                .map_err(|e| err("cannot read the audit log", e))?
                .into_iter()
                .filter(|(e, _)| e.at == last)
                .map(|(e, _)| e.id)
                .collect();
            let mut pending = rows;
            loop {
                for r in &pending {
                    if json {
                        println!("{}", as_json(r));
                    } else {
                        println!("{}", line(r));
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
                let fresh = audit::from(&mut conn, last, 1000).map_err(|e| err("cannot read the audit log", e))?;
                pending = fresh.into_iter().filter(|(e, _)| !seen.contains(&e.id)).collect();
                if let Some(newest) = pending.last().map(|(e, _)| e.at) {
                    if newest > last {
                        seen.clear();
                        last = newest;
                    }
                    seen.extend(pending.iter().filter(|(e, _)| e.at == last).map(|(e, _)| e.id.clone()));
                }
            }
        }
        AuditCommand::Search { user, kind, since, limit, json } => {
            let user_id = match user {
                None => None,
                Some(text) => {
                    let email = Email::parse(&text).map_err(|e| {
                        eprintln!("error: --user {text:?} is not an email address: {e}");
                        ExitCode::from(2)
                    })?;
                    let Some(u) = keyward_store::repo::users::find_by_email(&mut conn, email.as_str())
                        .map_err(|e| err("cannot read the accounts", e))?
                    else {
                        eprintln!(
                            "error: no account has the address {email}; a deleted account's events stay in the log: look for its `users delete` with --kind admin_action"
                        );
                        return Err(ExitCode::from(1));
                    };
                    Some(u.id)
                }
            };
            let since = match since {
                None => None,
                Some(text) => Some(
                    now - parse_duration(&text).ok_or_else(|| {
                        eprintln!("error: --since {text:?} is not a duration: write a number and a unit, s, m, h, d or w (24h, 7d)");
                        ExitCode::from(2)
                    })?,
                ),
            };
            let filter = Filter { user_id: user_id.as_deref(), kind: kind.as_deref(), since };
            let rows = audit::search(&mut conn, &filter, limit.max(0)).map_err(|e| err("cannot read the audit log", e))?;
            print(&rows, json);
            if rows.len() as i64 == limit && !json {
                eprintln!("(the newest {limit} events; use --limit for more)");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_take_a_number_and_a_unit() {
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("7d"), Some(7 * 86_400));
        assert_eq!(parse_duration("30m"), Some(1800));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("2w"), Some(14 * 86_400));
        for bad in ["", "24", "h", "1y", "-1d", "1.5h", "99999999999999999999d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
