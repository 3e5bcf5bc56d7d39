//! Raw → typed configuration. Collects every problem instead of stopping at the first,
//! and refuses what would be unsafe to run (CHECKLIST B5, F9).

use super::raw::{
    RawAudit, RawClient, RawConfig, RawDatabase, RawKeys, RawLimits, RawLogin, RawMail, RawMetrics, RawNetwork, RawTokens, RawTryIt,
};
use super::{Config, ConfigError, ConfigErrors, KeyRotation, Limits, MailTransport, SignupPolicy, SmtpTls};
use crate::client::{Client, ClientKind, GrantType, Lifetimes, RefreshPolicy, SigningAlg};
use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

struct Errors<'a> {
    source: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn add(&mut self, key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.list.push(ConfigError { source: self.source.to_owned(), key: key.into(), problem: problem.into(), fix: fix.into() });
    }
}

pub fn is_loopback_url(url: &str) -> bool {
    Url::parse(url).is_ok_and(|u| matches!(u.host_str(), Some("localhost") | Some("127.0.0.1") | Some("[::1]")))
}

pub fn validate(file: &Path, raw: RawConfig) -> Result<Config, ConfigErrors> {
    let source = file.display().to_string();
    let mut e = Errors { source: &source, list: Vec::new() };
    let issuer = issuer(&mut e, &raw.issuer);
    let data_dir = PathBuf::from(raw.data_dir.unwrap_or_else(|| "data".into()));
    let net = network(&mut e, raw.listen, raw.network, raw.metrics);
    let (database_url, pool_size) = database(&mut e, raw.database, &data_dir);
    let key_rotation = key_rotation(&raw.keys);
    let master_key = master_key(&mut e, raw.keys.master_key, raw.keys.master_key_file);
    let (signup, allowed_domains) = signup(&mut e, &raw.login);
    let login = login_times(&mut e, &raw.login);
    let tokens = token_lifetimes(&mut e, &raw.tokens);
    let limits = limits(&mut e, &raw.limits);
    let audit_retention_days = audit_retention(&mut e, &raw.audit);
    let (mail_from, mail) = mail(&mut e, raw.mail, &data_dir);
    let clients = clients(&mut e, raw.clients);
    let try_it_client = try_it(&mut e, raw.try_it, &issuer, &clients);
    refuse_development_defaults(&mut e, &issuer, raw.allow_development_defaults.unwrap_or(false), &mail, master_key.is_some());
    if !e.list.is_empty() {
        return Err(ConfigErrors(e.list));
    }
    Ok(Config {
        file: file.to_owned(),
        issuer,
        listen: net.listen,
        shutdown_delay_seconds: raw.shutdown_delay_seconds.unwrap_or(5).min(300),
        metrics_listen: net.metrics_listen,
        trusted_proxies: net.trusted_proxies,
        tls: net.tls,
        data_dir,
        database_url,
        pool_size: pool_size as u32,
        master_key,
        signup,
        allowed_domains,
        code_lifetime_seconds: login.code_lifetime as i64,
        session_idle_seconds: login.idle_minutes as i64 * 60,
        session_lifetime_seconds: login.lifetime_hours as i64 * 3600,
        reauthentication_seconds: login.reauthentication as i64,
        id_token_lifetime_seconds: tokens.id_token as i64,
        access_token_lifetime_seconds: tokens.access_token as i64,
        refresh_token_idle_seconds: tokens.refresh_idle as i64,
        refresh_token_lifetime_seconds: tokens.refresh_max as i64,
        key_rotation,
        mail_from,
        mail,
        limits,
        try_it_client,
        audit_retention_days: audit_retention_days.min(super::MAX_AUDIT_RETENTION_DAYS) as u32,
        clients,
    })
}

/// The issuer URL without its trailing slash: https (http only on loopback), a host name
/// (the passkey relying-party id), no query or fragment.
fn issuer(e: &mut Errors<'_>, raw: &str) -> String {
    let issuer = raw.trim_end_matches('/').to_owned();
    match Url::parse(&issuer) {
        Err(_) => e.add(
            "issuer",
            format!("{raw:?} is not a URL"),
            "use the public https URL people reach Keyward at, e.g. \"https://id.example.com\"",
        ),
        Ok(u) => {
            if u.scheme() != "https" && !(u.scheme() == "http" && is_loopback_url(&issuer)) {
                e.add(
                    "issuer",
                    "plain http is only allowed for localhost",
                    "use an https URL (terminate TLS in front of Keyward), or http://localhost:PORT for development",
                );
            }
            // WebAuthn takes the issuer's host as its relying-party id, which must be a domain
            // name (`serve` could not start otherwise).
            if matches!(u.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
                e.add(
                    "issuer",
                    "the host is an IP address, which cannot be a passkey (WebAuthn) relying-party id",
                    "use a host name: http://localhost:PORT for development, or the public https name",
                );
            }
            if u.query().is_some() || u.fragment().is_some() {
                e.add("issuer", "an issuer may not have a query or fragment (OIDC Discovery §3)", "remove everything after ? or #");
            }
        }
    }
    issuer
}

/// Where Keyward listens and whom it trusts on the network.
struct Network {
    listen: String,
    trusted_proxies: Vec<crate::net::Cidr>,
    tls: Option<(PathBuf, PathBuf)>,
    metrics_listen: Option<String>,
}

fn network(e: &mut Errors<'_>, listen: Option<String>, raw: RawNetwork, metrics: RawMetrics) -> Network {
    let listen = listen.unwrap_or_else(|| "127.0.0.1:8080".into());
    if listen.parse::<std::net::SocketAddr>().is_err() {
        e.add("listen", format!("{listen:?} is not an address:port"), "write it like \"127.0.0.1:8080\" or \"0.0.0.0:8080\"");
    }
    let mut trusted_proxies = Vec::new();
    for (i, text) in raw.trusted_proxies.iter().enumerate() {
        match crate::net::Cidr::parse(text.trim()) {
            Some(c) => trusted_proxies.push(c),
            None => e.add(
                format!("network.trusted_proxies[{i}]"),
                format!("{text:?} is not an address or range"),
                "write an address (\"10.0.0.7\") or a range (\"10.0.0.0/8\", \"fd00::/8\")",
            ),
        }
    }
    let tls = tls_files(e, raw.tls_cert_file, raw.tls_key_file);
    let metrics_listen = metrics_listen(e, metrics.listen.as_deref(), &listen);
    Network { listen, trusted_proxies, tls, metrics_listen }
}

/// Both PEM files of the listener's TLS, or neither.
fn tls_files(e: &mut Errors<'_>, cert: Option<String>, key: Option<String>) -> Option<(PathBuf, PathBuf)> {
    match (cert, key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            for (k, f) in [("network.tls_cert_file", &cert), ("network.tls_key_file", &key)] {
                if !std::path::Path::new(f).is_file() {
                    e.add(k, format!("{f:?} is not a readable file"), "give the path of a PEM file");
                }
            }
            Some((PathBuf::from(cert), PathBuf::from(key)))
        }
        _ => {
            e.add("network.tls_cert_file", "TLS needs both tls_cert_file and tls_key_file", "set both PEM paths, or neither");
            None
        }
    }
}

/// The metrics listener: an address apart from `listen`, or `off`.
fn metrics_listen(e: &mut Errors<'_>, raw: Option<&str>, listen: &str) -> Option<String> {
    match raw.unwrap_or("127.0.0.1:9464") {
        "off" => None,
        addr if addr.parse::<std::net::SocketAddr>().is_ok() && addr != listen => Some(addr.to_owned()),
        addr => {
            e.add(
                "metrics.listen",
                format!("{addr:?} is not an address:port apart from `listen`"),
                "write it like \"127.0.0.1:9464\" (keep it private), or \"off\"",
            );
            None
        }
    }
}

/// The database URL (SQLite in the data directory by default) and the reader pool's size.
fn database(e: &mut Errors<'_>, raw: RawDatabase, data_dir: &Path) -> (SecretString, u64) {
    let database_url: SecretString = raw.url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("keyward.db").display()).into());
    let url = database_url.expose_secret();
    if !(url.starts_with("sqlite://") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        e.add(
            "database.url",
            "the URL must start with sqlite:// or postgres://",
            "e.g. \"sqlite://data/keyward.db\" or \"postgres://keyward@db/keyward\"",
        );
    }
    // PostgreSQL connections spend most of their time waiting on the network: 8. A SQLite
    // connection works on this machine's CPU: one reader per core (writes have their own
    // connection), since more threads than cores only take turns and evict each other's caches.
    let pool_size = raw.pool_size.unwrap_or_else(|| if url.starts_with("sqlite://") { default_sqlite_pool_size() } else { 8 });
    if !(1..=256).contains(&pool_size) {
        e.add("database.pool_size", "must be between 1 and 256", "leave it out: 8 on PostgreSQL, the number of CPU cores on SQLite");
    }
    (database_url, pool_size)
}

/// The key that encrypts the signing keys at rest: 32 bytes in base64, inline or in a file.
fn master_key(e: &mut Errors<'_>, value: Option<SecretString>, file: Option<String>) -> Option<SecretString> {
    let master_key = value_or_file(e, "keys.master_key", value, file).map(|k| SecretString::from(k.expose_secret().trim()));
    if let Some(k) = &master_key {
        use base64::Engine;
        let ok = base64::engine::general_purpose::STANDARD.decode(k.expose_secret()).is_ok_and(|b| b.len() == 32);
        if !ok {
            e.add("keys.master_key", "must be 32 random bytes in base64", "generate one with `openssl rand -base64 32`");
        }
    }
    master_key
}

/// Who may sign up, and the domains `allowed_domains` lets in.
fn signup(e: &mut Errors<'_>, login: &RawLogin) -> (SignupPolicy, Vec<String>) {
    let signup = match login.signup.as_deref().unwrap_or("open") {
        "open" => SignupPolicy::Open,
        "invite_only" => SignupPolicy::InviteOnly,
        "allowed_domains" => SignupPolicy::AllowedDomains,
        other => {
            e.add("login.signup", format!("unknown policy {other:?}"), "use \"open\", \"allowed_domains\" or \"invite_only\"");
            SignupPolicy::Open
        }
    };
    let allowed_domains: Vec<String> = login.allowed_domains.iter().map(|d| d.trim().to_lowercase()).collect();
    if signup == SignupPolicy::AllowedDomains && allowed_domains.is_empty() {
        e.add(
            "login.allowed_domains",
            "signup = \"allowed_domains\" needs at least one domain",
            "add e.g. allowed_domains = [\"example.com\"]",
        );
    }
    (signup, allowed_domains)
}

/// The `[login]` lifetimes, in the units the file gives them.
struct LoginTimes {
    code_lifetime: u64,
    idle_minutes: u64,
    lifetime_hours: u64,
    reauthentication: u64,
}

fn login_times(e: &mut Errors<'_>, login: &RawLogin) -> LoginTimes {
    let code_lifetime = login.code_lifetime_seconds.unwrap_or(600);
    if !(1..=600).contains(&code_lifetime) {
        e.add("login.code_lifetime_seconds", "must be between 1 and 600 (NIST SP 800-63B: 10 minutes at most)", "use 600");
    }
    let idle_minutes = login.session_idle_minutes.unwrap_or(7 * 24 * 60);
    let lifetime_hours = login.session_lifetime_hours.unwrap_or(30 * 24);
    if idle_minutes == 0 || lifetime_hours == 0 || idle_minutes > lifetime_hours * 60 {
        e.add(
            "login.session_idle_minutes",
            "must be at least 1 and no longer than session_lifetime_hours",
            "e.g. 10080 (a week) with session_lifetime_hours = 720",
        );
    }
    let reauthentication = login.reauthentication_seconds.unwrap_or(600);
    if !(1..=86_400).contains(&reauthentication) {
        e.add("login.reauthentication_seconds", "must be between 1 and 86400 (a day)", "use 600 (ten minutes)");
    }
    LoginTimes { code_lifetime, idle_minutes, lifetime_hours, reauthentication }
}

/// The `[tokens]` lifetimes, in seconds.
struct TokenLifetimes {
    id_token: u64,
    access_token: u64,
    refresh_idle: u64,
    refresh_max: u64,
}

fn token_lifetimes(e: &mut Errors<'_>, tokens: &RawTokens) -> TokenLifetimes {
    let id_token = tokens.id_token_lifetime_seconds.unwrap_or(3600);
    let access_token = tokens.access_token_lifetime_seconds.unwrap_or(600);
    for (key, v) in [("tokens.id_token_lifetime_seconds", id_token), ("tokens.access_token_lifetime_seconds", access_token)] {
        if !(30..=86_400).contains(&v) {
            e.add(key, "must be between 30 and 86400 seconds", "short lifetimes are safer: 600 for access tokens, 3600 for ID tokens");
        }
    }
    let refresh_idle = tokens.refresh_token_idle_seconds.unwrap_or(30 * 86_400);
    let refresh_max = tokens.refresh_token_lifetime_seconds.unwrap_or(90 * 86_400);
    if refresh_idle < 60 || refresh_idle > refresh_max || refresh_max > 400 * 86_400 {
        e.add(
            "tokens.refresh_token_idle_seconds",
            "must be at least 60 and at most refresh_token_lifetime_seconds (itself at most 400 days)",
            "e.g. 2592000 (30 days) with refresh_token_lifetime_seconds = 7776000 (90 days)",
        );
    }
    TokenLifetimes { id_token, access_token, refresh_idle, refresh_max }
}

/// Signing-key rotation; out-of-range values are clamped, not refused.
fn key_rotation(keys: &RawKeys) -> KeyRotation {
    KeyRotation {
        rotate_after_seconds: match keys.rotate_after_days {
            None | Some(0) => None,
            Some(d) => Some(d.min(3650) as i64 * 86_400),
        },
        publish_ahead_seconds: keys.publish_ahead_seconds.unwrap_or(600).min(30 * 86_400) as i64,
        reload_seconds: keys.reload_seconds.unwrap_or(30).clamp(1, 3600) as i64,
    }
}

/// The `[limits]`: none may be 0, code tries at most 100 an hour.
fn limits(e: &mut Errors<'_>, l: &RawLimits) -> Limits {
    let limits = Limits {
        send_window_seconds: l.send_window_minutes.unwrap_or(15) as i64 * 60,
        sends_per_address: l.sends_per_address.unwrap_or(5).min(10_000) as i32,
        sends_per_ip: l.sends_per_ip.unwrap_or(30).min(1_000_000) as i32,
        code_tries_per_address_per_hour: l.code_tries_per_address_per_hour.unwrap_or(25).min(10_000) as i32,
        login_attempts_per_ip_per_minute: l
            .login_attempts_per_ip_per_minute
            .unwrap_or(super::DEFAULT_LOGIN_ATTEMPTS_PER_IP_PER_MINUTE)
            .min(1_000_000) as i32,
        sign_in_requests_per_ip_per_minute: l.sign_in_requests_per_ip_per_minute.unwrap_or(300).min(1_000_000) as u32,
        sign_in_burst_per_ip: l.sign_in_burst_per_ip.unwrap_or(60).min(1_000_000) as u32,
    };
    for (key, v) in [
        ("limits.send_window_minutes", l.send_window_minutes),
        ("limits.sends_per_address", l.sends_per_address),
        ("limits.sends_per_ip", l.sends_per_ip),
        ("limits.code_tries_per_address_per_hour", l.code_tries_per_address_per_hour),
        ("limits.login_attempts_per_ip_per_minute", l.login_attempts_per_ip_per_minute),
        ("limits.sign_in_requests_per_ip_per_minute", l.sign_in_requests_per_ip_per_minute),
        ("limits.sign_in_burst_per_ip", l.sign_in_burst_per_ip),
    ] {
        if v == Some(0) {
            e.add(key, "a limit of 0 would lock everyone out", "use a positive number, or leave the key out for the default");
        }
    }
    if limits.code_tries_per_address_per_hour > 100 {
        e.add(
            "limits.code_tries_per_address_per_hour",
            "more than 100 failures per account is too many (NIST SP 800-63B §5.2.2)",
            "use 100 or less",
        );
    }
    limits
}

/// How many days audit events are kept (0: forever).
fn audit_retention(e: &mut Errors<'_>, audit: &RawAudit) -> u64 {
    let days = audit.retention_days.unwrap_or(365);
    if days > super::MAX_AUDIT_RETENTION_DAYS {
        e.add(
            "audit.retention_days",
            format!("must be at most {} days", super::MAX_AUDIT_RETENTION_DAYS),
            "use a number of days such as 365, or 0 to keep audit events forever",
        );
    }
    days
}

/// The sender address and the mail transport (`dev` writes to the outbox file).
fn mail(e: &mut Errors<'_>, raw: RawMail, data_dir: &Path) -> (String, MailTransport) {
    let mail_from = raw.from.unwrap_or_else(|| "Keyward <no-reply@localhost>".into());
    let mail = match raw.transport.as_deref().unwrap_or("dev") {
        "dev" => MailTransport::Dev { outbox: raw.outbox.map(PathBuf::from).unwrap_or_else(|| data_dir.join("outbox.log")) },
        "smtp" => smtp(e, raw.smtp),
        other => {
            e.add(
                "mail.transport",
                format!("unknown transport {other:?}"),
                "use \"smtp\" in production or \"dev\" to write mail to the outbox file",
            );
            MailTransport::Dev { outbox: data_dir.join("outbox.log") }
        }
    };
    (mail_from, mail)
}

/// The registered clients by id; a repeated id is refused.
fn clients(e: &mut Errors<'_>, raw: Vec<RawClient>) -> HashMap<String, Arc<Client>> {
    let mut clients: HashMap<String, Arc<Client>> = HashMap::new();
    let mut seen_ids = std::collections::HashSet::new();
    for (i, rc) in raw.into_iter().enumerate() {
        let key = format!("clients[{i}]");
        if !seen_ids.insert(rc.id.clone()) {
            e.add(format!("{key}.id"), format!("client id {:?} is registered twice", rc.id), "give every client a unique id");
            continue;
        }
        if let Some(c) = client(e, &key, rc) {
            clients.insert(c.id.clone(), Arc::new(c));
        }
    }
    clients
}

/// The try-it page's client: registered, public, and with the page's callback.
fn try_it(e: &mut Errors<'_>, raw: RawTryIt, issuer: &str, clients: &HashMap<String, Arc<Client>>) -> Option<String> {
    if !raw.enabled.unwrap_or(false) {
        return None;
    }
    let id = raw.client_id.unwrap_or_else(|| "try-it".into());
    let callback = format!("{issuer}/try/callback");
    match clients.get(&id) {
        None => e.add(
            "try_it.client_id",
            format!("no client {id:?} is registered"),
            "register a public client for the try-it page, or set try_it.enabled = false",
        ),
        Some(c) if !c.is_public() => {
            e.add("try_it.client_id", format!("client {id:?} is confidential"), "the try-it page needs a public client (type = \"public\")")
        }
        Some(c) if !c.redirect_uris.contains(&callback) => e.add(
            "try_it.client_id",
            format!("client {id:?} does not register {callback}"),
            format!("add \"{callback}\" to its redirect_uris"),
        ),
        Some(_) => {}
    }
    Some(id)
}

/// A public issuer with development settings would mail nothing, or keep the key that
/// encrypts the signing keys next to the database: refused unless the operator says so.
fn refuse_development_defaults(e: &mut Errors<'_>, issuer: &str, allowed: bool, mail: &MailTransport, has_master_key: bool) {
    let public_issuer = issuer.starts_with("https://") && !is_loopback_url(issuer);
    if !public_issuer || allowed {
        return;
    }
    if matches!(mail, MailTransport::Dev { .. }) {
        e.add(
            "mail.transport",
            "\"dev\" writes sign-in emails to a file, but the issuer is public",
            "set transport = \"smtp\" and [mail.smtp] (or allow_development_defaults = true to run like this anyway)",
        );
    }
    if !has_master_key {
        e.add(
            "keys.master_key",
            "no master key: a development key would be stored next to the database, but the issuer is public",
            "set keys.master_key_file (or KEYWARD_KEYS__MASTER_KEY) to 32 random bytes in base64 (`openssl rand -base64 32`)",
        );
    }
}

/// A secret given inline (`KEY`) or in a file (`KEY_file`), never both.
fn value_or_file(e: &mut Errors<'_>, key: &str, value: Option<SecretString>, file: Option<String>) -> Option<SecretString> {
    match (value, file) {
        (Some(_), Some(_)) => {
            e.add(format!("{key}_file"), format!("both {key} and {key}_file are set"), "keep one of them");
            None
        }
        (Some(v), None) => Some(v),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(v) => Some(v.into()),
            Err(err) => {
                e.add(format!("{key}_file"), format!("cannot read {path}: {err}"), "check the path and its permissions");
                None
            }
        },
        (None, None) => None,
    }
}

fn smtp(e: &mut Errors<'_>, s: super::raw::RawSmtp) -> MailTransport {
    let tls = match s.tls.as_deref().unwrap_or("starttls") {
        "none" => SmtpTls::None,
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        other => {
            e.add(
                "mail.smtp.tls",
                format!("unknown TLS mode {other:?}"),
                "use \"starttls\" (port 587), \"tls\" (port 465) or \"none\" (local relays only)",
            );
            SmtpTls::StartTls
        }
    };
    let host = s.host.unwrap_or_default();
    if host.is_empty() {
        e.add("mail.smtp.host", "transport = \"smtp\" needs a host", "set host = \"smtp.example.com\"");
    }
    let default_port = match tls {
        SmtpTls::Tls => 465,
        SmtpTls::StartTls => 587,
        SmtpTls::None => 25,
    };
    let port = s.port.unwrap_or(default_port);
    if !(1..=65535).contains(&port) {
        e.add("mail.smtp.port", "must be between 1 and 65535", format!("use {default_port}"));
    }
    let password = value_or_file(e, "mail.smtp.password", s.password, s.password_file)
        .map(|p| SecretString::from(p.expose_secret().trim_end_matches(['\r', '\n'])));
    if s.username.is_some() != password.is_some() {
        e.add("mail.smtp.username", "username and password go together", "set both, or neither for an unauthenticated relay");
    }
    MailTransport::Smtp { host, port: port as u16, tls, username: s.username, password, timeout_seconds: s.timeout_seconds.unwrap_or(10) }
}

fn client(e: &mut Errors<'_>, key: &str, rc: RawClient) -> Option<Client> {
    let before = e.list.len();
    if rc.id.is_empty() || rc.id.len() > 128 || !rc.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        e.add(format!("{key}.id"), format!("{:?} is not a usable client id", rc.id), "use 1–128 letters, digits, '-', '_' or '.'");
    }
    let public = client_is_public(e, key, rc.kind.as_deref());
    let auth_method = rc.token_endpoint_auth_method.as_deref().unwrap_or(if public { "none" } else { "client_secret_basic" });
    let kind = client_kind(e, key, public, auth_method, &rc);
    if (rc.jwks.is_some() || rc.jwks_uri.is_some()) && auth_method != "private_key_jwt" {
        e.add(format!("{key}.jwks"), "keys are only used with private_key_jwt", "set token_endpoint_auth_method = \"private_key_jwt\"");
    }
    if rc.allow_private_jwks_uri.is_some() && rc.jwks_uri.is_none() {
        e.add(format!("{key}.allow_private_jwks_uri"), "only a client with a jwks_uri fetches keys", "remove the key, or set jwks_uri");
    }
    client_redirect_uris(e, key, &rc.redirect_uris, public);
    let id_token_alg = client_id_token_alg(e, key, rc.id_token_signing_alg.as_deref());
    let require_pkce = rc.require_pkce.unwrap_or(true);
    if public && !require_pkce {
        e.add(format!("{key}.require_pkce"), "public clients must use PKCE", "remove require_pkce = false");
    }
    client_logout_uris(e, key, &rc, public);
    let grant_types = client_grant_types(e, key, rc.grant_types.as_deref(), public);
    let refresh_tokens = client_refresh_policy(e, key, rc.refresh_tokens.as_deref());
    client_scope_names(e, key, rc.scopes.as_deref());
    let lifetimes = client_lifetimes(e, key, &rc);
    (e.list.len() == before).then(|| Client {
        name: rc.name.unwrap_or_else(|| rc.id.clone()),
        id: rc.id,
        kind,
        redirect_uris: rc.redirect_uris,
        require_pkce,
        id_token_alg,
        first_party: rc.first_party.unwrap_or(false),
        post_logout_redirect_uris: rc.post_logout_redirect_uris,
        backchannel_logout_uri: rc.backchannel_logout_uri,
        grant_types,
        refresh_tokens,
        scopes: rc.scopes,
        lifetimes,
    })
}

/// `type`: confidential (the default) or public.
fn client_is_public(e: &mut Errors<'_>, key: &str, kind: Option<&str>) -> bool {
    match kind.unwrap_or("confidential") {
        "confidential" => false,
        "public" => true,
        other => {
            e.add(
                format!("{key}.type"),
                format!("unknown client type {other:?}"),
                "use \"confidential\" (server-side apps) or \"public\" (SPAs, mobile apps)",
            );
            false
        }
    }
}

/// How the client authenticates at the token endpoint, with the credentials that method needs.
fn client_kind(e: &mut Errors<'_>, key: &str, public: bool, auth_method: &str, rc: &RawClient) -> ClientKind {
    match (public, auth_method) {
        (true, "none") => {
            if !rc.secret_hashes.is_empty() {
                e.add(
                    format!("{key}.secret_hashes"),
                    "a public client has no secret",
                    "remove secret_hashes, or make the client confidential",
                );
            }
            ClientKind::Public
        }
        (false, "client_secret_basic" | "client_secret_post") => client_secret_kind(e, key, &rc.secret_hashes),
        (false, "private_key_jwt") => private_key_jwt_kind(e, key, rc),
        (true, other) => {
            e.add(
                format!("{key}.token_endpoint_auth_method"),
                format!("{other:?} does not fit a public client"),
                "remove the key: public clients authenticate with PKCE alone (\"none\")",
            );
            ClientKind::Public
        }
        (false, other) => {
            e.add(
                format!("{key}.token_endpoint_auth_method"),
                format!("unknown or unfit method {other:?} for a confidential client"),
                "use \"client_secret_basic\", \"client_secret_post\" or \"private_key_jwt\"",
            );
            ClientKind::Public
        }
    }
}

/// A confidential client with secrets: at least one SHA-256 hash (base64url), never a secret.
fn client_secret_kind(e: &mut Errors<'_>, key: &str, secret_hashes: &[SecretString]) -> ClientKind {
    if secret_hashes.is_empty() {
        e.add(
            format!("{key}.secret_hashes"),
            "a confidential client needs a secret hash",
            "run `keyward clients new` and paste the printed secret_hashes line",
        );
    }
    for (j, h) in secret_hashes.iter().enumerate() {
        let h = h.expose_secret();
        if h.len() != 43 || !h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            e.add(
                format!("{key}.secret_hashes[{j}]"),
                "not a SHA-256 hash in base64url (43 characters); secrets themselves never go in the config",
                "run `keyward clients hash-secret` with the secret, or `keyward clients new` for a fresh one",
            );
        }
    }
    ClientKind::Confidential { secret_hashes: secret_hashes.to_vec() }
}

/// A private_key_jwt client: its public keys inline (`jwks`) or fetched (`jwks_uri`), one of them.
fn private_key_jwt_kind(e: &mut Errors<'_>, key: &str, rc: &RawClient) -> ClientKind {
    if !rc.secret_hashes.is_empty() {
        e.add(format!("{key}.secret_hashes"), "a private_key_jwt client has no secret", "remove secret_hashes");
    }
    match (rc.jwks.clone(), rc.jwks_uri.clone()) {
        (Some(jwks), None) => {
            let ok = serde_json::from_str::<serde_json::Value>(&jwks)
                .ok()
                .and_then(|v| v.get("keys").and_then(|k| k.as_array()).cloned())
                .is_some_and(|keys| !keys.is_empty() && keys.iter().all(usable_public_jwk));
            if !ok {
                e.add(
                    format!("{key}.jwks"),
                    "not a JWK Set of usable public keys (RSA with n and e, EC with crv, x and y, or OKP Ed25519 with x)",
                    "paste the client's public keys as JSON: '{\"keys\": [{...}]}'",
                );
            }
            ClientKind::PrivateKeyJwt { keys: crate::client::ClientKeys::Inline(jwks) }
        }
        (None, Some(uri)) => {
            if !(uri.starts_with("https://") || is_loopback_url(&uri)) {
                e.add(format!("{key}.jwks_uri"), "the JWK Set must be fetched over https", "use an https:// URL");
            }
            let allow_private = rc.allow_private_jwks_uri.unwrap_or(false);
            ClientKind::PrivateKeyJwt { keys: crate::client::ClientKeys::Uri { uri, allow_private } }
        }
        _ => {
            e.add(
                format!("{key}.jwks"),
                "a private_key_jwt client needs its public keys: jwks or jwks_uri (one of them)",
                "set jwks = '{\"keys\": [...]}' or jwks_uri = \"https://app.example.com/jwks\"",
            );
            ClientKind::Public
        }
    }
}

/// At least one redirect URI, each one allowed (`redirect_uri_problem`).
fn client_redirect_uris(e: &mut Errors<'_>, key: &str, uris: &[String], public: bool) {
    if uris.is_empty() {
        e.add(format!("{key}.redirect_uris"), "no redirect URI is registered", "list the exact URIs the app receives codes on");
    }
    for (j, uri) in uris.iter().enumerate() {
        if let Some((problem, fix)) = redirect_uri_problem(uri, public) {
            e.add(format!("{key}.redirect_uris[{j}]"), problem, fix);
        }
    }
}

/// The ID token's signing algorithm (RS256 unless the client asks for another).
fn client_id_token_alg(e: &mut Errors<'_>, key: &str, alg: Option<&str>) -> SigningAlg {
    match alg {
        None => SigningAlg::Rs256,
        Some(a) => SigningAlg::parse(a).unwrap_or_else(|| {
            e.add(
                format!("{key}.id_token_signing_alg"),
                format!("unsupported algorithm {a:?}"),
                "use \"RS256\" (the OIDC default), \"ES256\" or \"EdDSA\"",
            );
            SigningAlg::Rs256
        }),
    }
}

/// Post-logout redirect URIs follow the redirect URI rules; the back-channel URI is https
/// (or loopback) without a fragment.
fn client_logout_uris(e: &mut Errors<'_>, key: &str, rc: &RawClient, public: bool) {
    for (j, uri) in rc.post_logout_redirect_uris.iter().enumerate() {
        if let Some((problem, fix)) = redirect_uri_problem(uri, public) {
            e.add(format!("{key}.post_logout_redirect_uris[{j}]"), problem, fix);
        }
    }
    if let Some(uri) = &rc.backchannel_logout_uri
        && (Url::parse(uri).is_err() || !(uri.starts_with("https://") || is_loopback_url(uri)) || uri.contains('#'))
    {
        e.add(
            format!("{key}.backchannel_logout_uri"),
            format!("{uri:?} is not an absolute https URL without a fragment"),
            "use the app's https endpoint that receives logout tokens",
        );
    }
}

/// The grants the client may use (authorization_code and refresh_token by default).
fn client_grant_types(e: &mut Errors<'_>, key: &str, raw: Option<&[String]>, public: bool) -> Vec<GrantType> {
    let default = ["authorization_code".to_owned(), "refresh_token".to_owned()];
    let mut grant_types = Vec::new();
    for (j, g) in raw.unwrap_or(&default).iter().enumerate() {
        match GrantType::parse(g) {
            Some(GrantType::ClientCredentials) if public => e.add(
                format!("{key}.grant_types[{j}]"),
                "a public client cannot use client_credentials",
                "remove it, or make the client confidential",
            ),
            Some(t) => grant_types.push(t),
            None => e.add(
                format!("{key}.grant_types[{j}]"),
                format!("unknown grant type {g:?}"),
                "use \"authorization_code\", \"refresh_token\" or \"client_credentials\"",
            ),
        }
    }
    grant_types
}

/// When the client gets refresh tokens (with `offline_access` by default).
fn client_refresh_policy(e: &mut Errors<'_>, key: &str, raw: Option<&str>) -> RefreshPolicy {
    match raw.unwrap_or("offline_access") {
        "offline_access" => RefreshPolicy::OfflineAccess,
        "always" => RefreshPolicy::Always,
        "never" => RefreshPolicy::Never,
        other => {
            e.add(format!("{key}.refresh_tokens"), format!("unknown policy {other:?}"), "use \"offline_access\", \"always\" or \"never\"");
            RefreshPolicy::OfflineAccess
        }
    }
}

/// Scope names are printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3).
fn client_scope_names(e: &mut Errors<'_>, key: &str, scopes: Option<&[String]>) {
    for (j, sc) in scopes.unwrap_or_default().iter().enumerate() {
        if sc.is_empty() || sc.len() > 128 || !sc.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') {
            e.add(format!("{key}.scopes[{j}]"), format!("{sc:?} is not a valid scope name"), "use printable ASCII without spaces");
        }
    }
}

/// The client's own token lifetimes, each within its range; unset ones take the `[tokens]` default.
fn client_lifetimes(e: &mut Errors<'_>, key: &str, rc: &RawClient) -> Lifetimes {
    let mut lifetime = |name: &str, v: Option<u64>, range: std::ops::RangeInclusive<u64>| {
        v.map(|v| {
            if !range.contains(&v) {
                e.add(
                    format!("{key}.{name}"),
                    format!("must be between {} and {} seconds", range.start(), range.end()),
                    "leave the key out for the [tokens] default",
                );
            }
            v as i64
        })
    };
    Lifetimes {
        access_token: lifetime("access_token_lifetime_seconds", rc.access_token_lifetime_seconds, 30..=86_400),
        id_token: lifetime("id_token_lifetime_seconds", rc.id_token_lifetime_seconds, 30..=86_400),
        refresh_token_idle: lifetime("refresh_token_idle_seconds", rc.refresh_token_idle_seconds, 60..=400 * 86_400),
        refresh_token_max: lifetime("refresh_token_lifetime_seconds", rc.refresh_token_lifetime_seconds, 60..=400 * 86_400),
    }
}

/// A public JWK with the members its key type needs (RFC 7518 §6): what the server can
/// verify client assertions with.
fn usable_public_jwk(k: &serde_json::Value) -> bool {
    let has = |m: &str| k.get(m).and_then(|v| v.as_str()).is_some_and(|v| !v.is_empty());
    match k.get("kty").and_then(|v| v.as_str()) {
        Some("RSA") => has("n") && has("e"),
        Some("EC") => has("crv") && has("x") && has("y"),
        Some("OKP") => k.get("crv").and_then(|v| v.as_str()) == Some("Ed25519") && has("x"),
        _ => false,
    }
}

/// RFC 9700 §2.6 and §4.1: absolute, no fragment, https, except loopback http and (for native
/// public clients) private-use schemes (RFC 8252 §7.1).
fn redirect_uri_problem(uri: &str, public: bool) -> Option<(String, String)> {
    let Ok(u) = Url::parse(uri) else {
        return Some((format!("{uri:?} is not an absolute URL"), "write the full URI, e.g. \"https://app.example.com/callback\"".into()));
    };
    if u.fragment().is_some() {
        return Some(("a redirect URI may not have a #fragment (RFC 6749 §3.1.2)".into(), "remove the fragment".into()));
    }
    match u.scheme() {
        "https" => None,
        "http" if is_loopback_url(uri) => None,
        "http" => Some((
            "plain http redirect URIs are only allowed on loopback (RFC 9700 §2.6)".into(),
            "use https, or http://localhost / http://127.0.0.1 for development".into(),
        )),
        s if public && s.contains('.') => None,
        _ => Some((
            format!("scheme {:?} is not allowed", u.scheme()),
            "use https; native apps may use a reverse-domain scheme like com.example.app:/cb".into(),
        )),
    }
}

/// The SQLite reader pool's default size: the CPU cores this process may run on (respecting
/// `taskset` and cgroup limits), at most 8.
fn default_sqlite_pool_size() -> u64 {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(8) as u64)
}
