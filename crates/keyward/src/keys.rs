//! `keyward keys list|rotate`: the signing keys in the database, and rotation by hand. A
//! rotated key is published at once and signs after `keys.publish_ahead_seconds`, so every
//! JWKS cache sees it first; the key it replaces stays published until every token it signed
//! has expired. Running servers pick the change up within `keys.reload_seconds`.

use crate::load_config;
use crate::serve::open_database;
use clap::Subcommand;
use keyward_core::Clock;
use keyward_core::client::SigningAlg;
use keyward_service::{KeyRing, MasterKey};
use secrecy::ExposeSecret;
use std::path::Path;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List every signing key with its state and dates.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start using a new key (for every algorithm, or one).
    Rotate {
        /// RS256, ES256 or EdDSA; all three when left out.
        #[arg(long)]
        alg: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn err(what: &str, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {what}: {e}");
    ExitCode::from(1)
}

fn when(unix: Option<i64>) -> String {
    unix.map(keyward_web::human_time).unwrap_or_else(|| "-".into())
}

pub fn run(path: &Path, cmd: KeysCommand) -> Result<(), ExitCode> {
    let config = load_config(path)?;
    let pool = open_database(&config)?;
    let mut conn = pool.get().map_err(|e| err("cannot connect to the database", e))?;
    let now = keyward_core::SystemClock.unix();
    match cmd {
        KeysCommand::List { json } => {
            let rows = keyward_store::repo::keys::all(&mut conn).map_err(|e| err("cannot read the keys", e))?;
            let state = |r: &keyward_store::models::SigningKeyRow| match (r.unpublish_at, r.retired_at) {
                (Some(u), _) if u <= now => "unpublished",
                (_, Some(t)) if t <= now => "retired (verifies only)",
                _ if r.activates_at > now => "published, signs soon",
                _ => "signing",
            };
            if json {
                let out: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({ "kid": r.kid, "alg": r.alg, "state": state(r), "created_at": r.created_at,
                            "activates_at": r.activates_at, "retired_at": r.retired_at, "unpublish_at": r.unpublish_at })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(out));
            } else {
                println!("{:<44} {:<6} {:<24} {:<18} {:<18} {:<18}", "KID", "ALG", "STATE", "SIGNS FROM", "SIGNS UNTIL", "IN JWKS UNTIL");
                for r in &rows {
                    println!(
                        "{:<44} {:<6} {:<24} {:<18} {:<18} {:<18}",
                        r.kid,
                        r.alg,
                        state(r),
                        when(Some(r.activates_at)),
                        when(r.retired_at),
                        when(r.unpublish_at)
                    );
                }
            }
        }
        KeysCommand::Rotate { alg, json } => {
            let algs: Vec<SigningAlg> = match alg.as_deref() {
                None => SigningAlg::ALL.to_vec(),
                Some(a) => vec![SigningAlg::parse(a).ok_or_else(|| err("--alg", format!("{a:?} is not RS256, ES256 or EdDSA")))?],
            };
            let (master, _) = MasterKey::resolve(config.master_key.as_ref().map(|k| k.expose_secret()), &config.data_dir)
                .map_err(|e| err("master key", e))?;
            let ring = KeyRing::load_or_create(&mut conn, &master, now).map_err(|e| err("cannot load the signing keys", e))?;
            let ahead = config.key_rotation.publish_ahead_seconds;
            let keep = config.longest_token_lifetime();
            let mut out = Vec::new();
            for alg in algs {
                let kid = ring.rotate(&mut conn, alg, now, ahead, keep).map_err(|e| err("rotation failed", e))?;
                match &kid {
                    Some(kid) if !json => println!(
                        "{}: new key {kid} is published now and signs from {} (in {ahead} s); the previous key stays in the JWKS until {}",
                        alg.as_str(),
                        when(Some(now + ahead)),
                        when(Some(now + ahead + keep))
                    ),
                    None if !json => println!("{}: another process rotated this key at the same moment; nothing to do", alg.as_str()),
                    _ => {}
                }
                out.push(serde_json::json!({ "alg": alg.as_str(), "kid": kid, "activates_at": now + ahead, "previous_unpublish_at": now + ahead + keep }));
            }
            let detail = serde_json::json!({ "command": "keys rotate", "keys": out });
            keyward_service::users::record_admin_action(&mut conn, None, detail, now)
                .map_err(|e| err("cannot record the rotation in the audit log", e))?;
            if json {
                println!("{}", serde_json::Value::Array(out));
            }
        }
    }
    Ok(())
}
