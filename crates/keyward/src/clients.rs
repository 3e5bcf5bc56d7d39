//! `keyward clients …`: make a fresh client secret and the config snippet that registers it.
//! The config keeps only the secret's SHA-256 hash; the secret is printed once.

use clap::Subcommand;
use keyward_core::secret::{hash_secret, random_token};
use std::io::Read;
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
}

pub fn run(cmd: ClientsCommand) -> Result<(), ExitCode> {
    match cmd {
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
