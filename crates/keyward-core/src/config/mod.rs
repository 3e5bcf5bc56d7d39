//! Configuration: one TOML file plus `KEYWARD_*` environment overrides, parsed raw, then
//! validated into a typed [`Config`]. Every problem is reported at once, each naming the
//! file (or environment variable), the key and the fix.

mod env;
mod raw;
mod validate;

use crate::client::Client;
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use validate::validate;

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, or `environment` for a `KEYWARD_*` variable.
    pub source: String,
    /// The key, as a TOML path (`clients[1].redirect_uris[0]`) or the variable's name.
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}\n    fix: {}", self.source, self.key, self.problem, self.fix)
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "{n} problem{} in the configuration:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupPolicy {
    Open,
    InviteOnly,
    AllowedDomains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// Compared with [`MailTransport::same_as`] (the password is a secret, without `PartialEq`).
#[derive(Debug, Clone)]
pub enum MailTransport {
    /// Log the message and append it to `outbox`: for trying Keyward out.
    Dev {
        outbox: PathBuf,
    },
    Smtp {
        host: String,
        port: u16,
        tls: SmtpTls,
        username: Option<String>,
        password: Option<SecretString>,
        timeout_seconds: u64,
    },
}

impl MailTransport {
    /// The same settings, password included (compared exposed, in constant time).
    pub fn same_as(&self, other: &MailTransport) -> bool {
        match (self, other) {
            (MailTransport::Dev { outbox: a }, MailTransport::Dev { outbox: b }) => a == b,
            (
                MailTransport::Smtp { host, port, tls, username, password, timeout_seconds },
                MailTransport::Smtp {
                    host: host2,
                    port: port2,
                    tls: tls2,
                    username: username2,
                    password: password2,
                    timeout_seconds: timeout2,
                },
            ) => {
                (host, port, tls, username, timeout_seconds) == (host2, port2, tls2, username2, timeout2)
                    && same_secret(password.as_ref(), password2.as_ref())
            }
            _ => false,
        }
    }
}

/// Whether two optional secrets are equal (both absent, or equal values in constant time).
pub fn same_secret(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => crate::secret::constant_time_eq(a.expose_secret(), b.expose_secret()),
        _ => false,
    }
}

/// `Debug` shows no secret: the master key, the SMTP password, the database URL (it may
/// carry a password) and client secret hashes are [`SecretString`]s.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    /// Without a trailing slash; every endpoint URL starts with it.
    pub issuer: String,
    pub listen: String,
    /// On SIGTERM, keep serving this long with readiness at 503, so load balancers stop
    /// sending before the listener closes.
    pub shutdown_delay_seconds: u64,
    /// Where `/metrics` (and the probes) are served, apart from the public listener; None: off.
    pub metrics_listen: Option<String>,
    /// Proxies whose `X-Forwarded-For` is believed (client address for limits and emails).
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// Serve HTTPS directly with this certificate chain and private key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; a secret, since it may carry a password.
    pub database_url: SecretString,
    pub pool_size: u32,
    /// A master key given directly or read from `master_key_file` (base64 of 32 bytes).
    pub master_key: Option<SecretString>,
    pub signup: SignupPolicy,
    pub allowed_domains: Vec<String>,
    pub code_lifetime_seconds: i64,
    pub session_idle_seconds: i64,
    pub session_lifetime_seconds: i64,
    /// Adding or removing a passkey, new recovery codes, turning email sign-in off and
    /// signing out elsewhere need a sign-in at most this old; otherwise the person proves
    /// it is them again first (1 to 86400).
    pub reauthentication_seconds: i64,
    pub id_token_lifetime_seconds: i64,
    pub access_token_lifetime_seconds: i64,
    /// A refresh token dies unused after this long (each rotation starts it again)…
    pub refresh_token_idle_seconds: i64,
    /// …and its whole family this long after sign-in, whatever happens.
    pub refresh_token_lifetime_seconds: i64,
    pub key_rotation: KeyRotation,
    pub mail_from: String,
    pub mail: MailTransport,
    pub limits: Limits,
    pub try_it_client: Option<String>,
    /// Audit events older than this many days are swept; 0 keeps them forever.
    pub audit_retention_days: u32,
    pub clients: HashMap<String, Arc<Client>>,
}

/// Signing-key rotation (DESIGN.md §3, CHECKLIST F6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRotation {
    /// Rotate each algorithm's key when it has signed this long (None: only by command).
    pub rotate_after_seconds: Option<i64>,
    /// A new key is in the JWKS this long before it signs, so caches pick it up first.
    pub publish_ahead_seconds: i64,
    /// How often each instance reloads the keys from the database.
    pub reload_seconds: i64,
}

/// Abuse limits. The first five are counted in the database, so they hold across instances;
/// the per-IP request rate is counted in each process (actix-governor) as a first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub send_window_seconds: i64,
    pub sends_per_address: i32,
    pub sends_per_ip: i32,
    pub code_tries_per_address_per_hour: i32,
    /// New login attempts (`/authorize` without a usable session) per client address (IPv4,
    /// IPv6 per /64) per minute. Signed-in browsers are never counted.
    pub login_attempts_per_ip_per_minute: i32,
    pub sign_in_requests_per_ip_per_minute: u32,
    pub sign_in_burst_per_ip: u32,
}

/// `limits.login_attempts_per_ip_per_minute` when not set: two new sign-ins every second,
/// all minute long, from one address. Sessions last days, so even a large office behind one
/// NAT starts far fewer; and a sign-in takes at least four `/login/*` requests, so the default
/// per-process request limit there (300 a minute) lets one address finish about 75 a minute
/// per instance. An attacker's rows stay bounded: at most 7,200 attempts (of at most ~4 KB
/// each, by the parameter bounds) per address per hour, the attempts' lifetime.
pub const DEFAULT_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE: u64 = 120;

/// The most `audit.retention_days` may be (100 years).
pub const MAX_AUDIT_RETENTION_DAYS: u64 = 36_500;

impl Config {
    /// Reads `file`, overlays the `KEYWARD_*` variables in `env`, and validates the result.
    pub fn load(file: &Path, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        let source = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                source: source.clone(),
                key: "(file)".into(),
                problem: format!("cannot read the file: {e}"),
                fix: "check the path (pass it with --config or KEYWARD_CONFIG) and its permissions".into(),
            }])
        })?;
        Self::from_toml(file, &text, env)
    }

    pub fn from_toml(file: &Path, text: &str, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        let source = file.display().to_string();
        let mut value: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigErrors(vec![ConfigError {
                source: source.clone(),
                key: line_of(text, e.span()),
                problem: format!("not valid TOML: {}", e.message()),
                fix: "correct the syntax at that line (strings need quotes, tables need [brackets])".into(),
            }])
        })?;
        let from_env = env::overlay(&mut value, env).map_err(ConfigErrors)?;
        let raw: raw::RawConfig = serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner().to_string();
            let mut err = shape_error(&source, key, inner);
            // A key set by a variable is reported as that variable.
            if let Some((_, var)) = from_env.iter().find(|(path, _)| *path == err.key || path.starts_with(&format!("{}.", err.key))) {
                err.source = "environment".into();
                err.key = var.clone();
            }
            ConfigErrors(vec![err])
        })?;
        validate(file, raw)
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.get(id).map(|c| c.as_ref())
    }

    /// The longest any ID or access token can live (a retired key stays published this long).
    pub fn longest_token_lifetime(&self) -> i64 {
        self.clients
            .values()
            .flat_map(|c| [c.lifetimes.access_token, c.lifetimes.id_token])
            .flatten()
            .chain([self.id_token_lifetime_seconds, self.access_token_lifetime_seconds])
            .max()
            .unwrap_or(self.id_token_lifetime_seconds)
    }

    /// Audit events recorded before this moment may be swept (None: keep them forever).
    pub fn audit_cutoff(&self, now: i64) -> Option<i64> {
        (self.audit_retention_days > 0).then(|| now - i64::from(self.audit_retention_days) * 86_400)
    }

    /// True for `https` issuers and loopback hosts, which browsers treat as secure contexts.
    pub fn issuer_is_loopback(&self) -> bool {
        validate::is_loopback_url(&self.issuer)
    }
}

fn line_of(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(s) => format!("line {}", text[..s.start.min(text.len())].lines().count().max(1)),
        None => "(file)".into(),
    }
}

fn shape_error(source: &str, key: String, message: String) -> ConfigError {
    let key = if key == "." || key.is_empty() { "(top level)".to_owned() } else { key };
    let fix = if message.starts_with("unknown field") {
        "remove this key or correct its spelling (see config/keyward.toml for every key)".to_owned()
    } else if message.starts_with("missing field") {
        "add the key; config/keyward.toml shows an example".to_owned()
    } else {
        "give the key a value of the expected type".to_owned()
    };
    ConfigError { source: source.to_owned(), key, problem: message, fix }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
