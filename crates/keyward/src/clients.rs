//! `keyward clients …`: make a fresh client secret and the config snippet that registers it
//! (the config keeps only the secret's SHA-256 hash; the secret is printed once), and list or
//! check the clients the config registers.

use crate::load_config;
use clap::Subcommand;
use keyward_core::client::{Client, ClientKind, RefreshPolicy};
use keyward_core::secret::{hash_secret, random_token};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Print a new client's secret (once) and the [[clients]] entry to paste into the config.
    New {
        /// The client id, e.g. "my-app".
        #[arg(long)]
        id: String,
        /// The name people see on the login page.
        #[arg(long)]
        name: Option<String>,
        /// An exact redirect URI (repeat for several).
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// A public client (SPA or mobile app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
    },
    /// Read a secret from standard input and print the hash to put in secret_hashes.
    HashSecret,
    /// List the clients the config registers: id, name, type, authentication, grant types,
    /// first party, redirect URIs.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config (as `config check` does) and print one OK line per client.
    Check,
}

/// (type, token endpoint authentication) as the config spells them.
fn kind(c: &Client) -> (&'static str, &'static str) {
    match c.kind {
        ClientKind::Confidential { .. } => ("confidential", "client_secret_basic"),
        ClientKind::PrivateKeyJwt { .. } => ("confidential", "private_key_jwt"),
        ClientKind::Public => ("public", "none"),
    }
}

fn sorted(config: &keyward_core::config::Config) -> Vec<&Client> {
    let mut clients: Vec<&Client> = config.clients.values().map(|c| c.as_ref()).collect();
    clients.sort_by(|a, b| a.id.cmp(&b.id));
    clients
}

fn grant_types(c: &Client) -> Vec<&'static str> {
    c.grant_types.iter().map(|g| g.as_str()).collect()
}

pub fn run(path: &Path, cmd: ClientsCommand) -> Result<(), ExitCode> {
    match cmd {
        ClientsCommand::List { json } => {
            let config = load_config(path)?;
            let clients = sorted(&config);
            if json {
                let out: Vec<_> = clients
                    .iter()
                    .map(|c| {
                        let (kind, auth) = kind(c);
                        serde_json::json!({
                            "id": c.id, "name": c.name, "type": kind, "token_endpoint_auth_method": auth,
                            "grant_types": grant_types(c), "first_party": c.first_party, "redirect_uris": c.redirect_uris,
                            "post_logout_redirect_uris": c.post_logout_redirect_uris, "backchannel_logout_uri": c.backchannel_logout_uri,
                            "id_token_signing_alg": c.id_token_alg.as_str(), "require_pkce": c.pkce_required(), "scopes": c.scopes,
                            "refresh_tokens": match c.refresh_tokens {
                                RefreshPolicy::OfflineAccess => "offline_access",
                                RefreshPolicy::Always => "always",
                                RefreshPolicy::Never => "never",
                            },
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(out));
            } else {
                println!(
                    "{:<16}  {:<20}  {:<12}  {:<19}  {:<42}  {:<11}  REDIRECT URIS",
                    "ID", "NAME", "TYPE", "AUTH", "GRANT TYPES", "FIRST PARTY"
                );
                for c in &clients {
                    let (kind, auth) = kind(c);
                    println!(
                        "{:<16}  {:<20}  {:<12}  {:<19}  {:<42}  {:<11}  {}",
                        c.id,
                        c.name,
                        kind,
                        auth,
                        grant_types(c).join(","),
                        if c.first_party { "yes" } else { "no" },
                        c.redirect_uris.join(" ")
                    );
                }
            }
            Ok(())
        }
        ClientsCommand::Check => {
            let config = load_config(path)?;
            for c in sorted(&config) {
                let (kind, auth) = kind(c);
                println!(
                    "client {}: OK ({kind}, {auth}, {} redirect URI{})",
                    c.id,
                    c.redirect_uris.len(),
                    if c.redirect_uris.len() == 1 { "" } else { "s" }
                );
            }
            println!("{}: {} client{} OK", path.display(), config.clients.len(), if config.clients.len() == 1 { "" } else { "s" });
            Ok(())
        }
        ClientsCommand::New { id, name, redirect_uris, public } => {
            let uris = redirect_uris.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ");
            let name = name.unwrap_or_else(|| id.clone());
            if public {
                println!("[[clients]]\nid = {id:?}\nname = {name:?}\ntype = \"public\"\nredirect_uris = [{uris}]");
            } else {
                let secret = random_token(&mut rand::rng());
                eprintln!("Client secret (shown once; give it to the app, keep it out of the config):\n\n    {secret}\n");
                eprintln!("Add this to the config file:\n");
                println!(
                    "[[clients]]\nid = {id:?}\nname = {name:?}\nsecret_hashes = [{:?}]\nredirect_uris = [{uris}]",
                    hash_secret(&secret)
                );
            }
            Ok(())
        }
        ClientsCommand::HashSecret => {
            let mut secret = String::new();
            std::io::stdin().read_to_string(&mut secret).map_err(|e| {
                eprintln!("cannot read the secret from standard input: {e}");
                ExitCode::from(1)
            })?;
            let secret = secret.trim_end_matches(['\r', '\n']);
            if secret.len() < 32 {
                eprintln!("warning: this secret is short; `keyward clients new` makes a 256-bit one");
            }
            println!("{}", hash_secret(secret));
            Ok(())
        }
    }
}
