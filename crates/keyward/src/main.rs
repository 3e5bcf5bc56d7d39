//! The `keyward` command: run the server, apply migrations, check the config, manage clients.

mod admin;
mod audit;
mod clients;
mod keys;
mod serve;

use clap::{Parser, Subcommand};
use keyward_core::config::Config;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "keyward", version, about = "Keyward: a passwordless OpenID Connect provider")]
struct Cli {
    /// The config file.
    #[arg(long, short, global = true, env = "KEYWARD_CONFIG", default_value = "config/keyward.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Validate configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Relying-party clients: register one, list or check those in the config.
    Clients {
        #[command(subcommand)]
        command: clients::ClientsCommand,
    },
    /// Database maintenance.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Check mail delivery.
    Mail {
        #[command(subcommand)]
        command: admin::MailCommand,
    },
    /// Manage accounts: invite, disable, enable, list, show, sessions, revoke, delete.
    Users {
        #[command(subcommand)]
        command: admin::UsersCommand,
    },
    /// Signing keys: list them, rotate them.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Read the audit log: the latest events, or search it.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Remove expired codes, links, login attempts, sessions, rate-limit windows and audit
    /// events older than `audit.retention_days` now (`serve` also does this every ten minutes).
    Cleanup,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a config file (default: --config) and the KEYWARD_* variables; lists every problem.
    Check { file: Option<PathBuf> },
    /// Make the running server (its pid is in `<data_dir>/keyward.pid`) read its config again.
    Reload,
}

/// `KEYWARD_*` variables, in a stable order.
pub(crate) fn keyward_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("KEYWARD_")).collect();
    env.sort();
    env
}

pub fn load_config(path: &Path) -> Result<Config, ExitCode> {
    Config::load(path, &keyward_env()).map_err(|errors| {
        eprint!("{errors}");
        ExitCode::from(2)
    })
}

/// `keyward config reload`: checks the file first (so a bad one is reported here too), then
/// sends SIGHUP to the server whose pid file is in the config's data_dir.
fn reload(path: &Path) -> Result<(), ExitCode> {
    let config = load_config(path)?;
    let pid_file = config.data_dir.join("keyward.pid");
    let pid = std::fs::read_to_string(&pid_file).map_err(|e| {
        eprintln!(
            "error: cannot read {}: {e}\n    fix: is `keyward serve` running with this config? (it writes that file)",
            pid_file.display()
        );
        ExitCode::from(1)
    })?;
    let pid = pid.trim();
    let status = std::process::Command::new("kill").args(["-HUP", pid]).status().map_err(|e| {
        eprintln!("error: cannot run kill: {e}");
        ExitCode::from(1)
    })?;
    if !status.success() {
        eprintln!("error: no running server with pid {pid} (from {})", pid_file.display());
        return Err(ExitCode::from(1));
    }
    println!("asked Keyward (pid {pid}) to reload {}; its log says whether it did", path.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve::serve(&cli.config),
        Command::Migrate => serve::migrate(&cli.config),
        Command::Config { command: ConfigCommand::Check { file } } => {
            let path = file.unwrap_or(cli.config);
            load_config(&path).map(|c| {
                println!(
                    "{}: OK ({} client{}, issuer {})",
                    path.display(),
                    c.clients.len(),
                    if c.clients.len() == 1 { "" } else { "s" },
                    c.issuer
                );
                if c.master_key.is_none() {
                    println!(
                        "warning: no master key is configured; a development key in {} will be used",
                        c.data_dir.join("master.key").display()
                    );
                }
                if matches!(c.mail, keyward_core::config::MailTransport::Dev { .. }) {
                    println!("warning: mail.transport = \"dev\": sign-in emails are written to a file, not sent");
                }
            })
        }
        Command::Config { command: ConfigCommand::Reload } => reload(&cli.config),
        Command::Clients { command } => clients::run(&cli.config, command),
        Command::Db { command: DbCommand::Cleanup } => serve::cleanup(&cli.config),
        Command::Mail { command } => admin::mail(&cli.config, command),
        Command::Users { command } => admin::users(&cli.config, command),
        Command::Keys { command } => keys::run(&cli.config, command),
        Command::Audit { command } => audit::run(&cli.config, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
