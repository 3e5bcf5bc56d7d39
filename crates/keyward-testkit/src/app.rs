//! Runs the real `keyward` binary for a test: a fresh data directory, a fresh SQLite file or
//! PostgreSQL database, a real SMTP sink for its mail, and a free port on loopback. The
//! process is killed when the [`TestApp`] is dropped; its log is printed if it fails to start.

use crate::smtp::SmtpSink;
use anyhow::{Context as _, bail};
use keyward_core::secret::hash_secret;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The confidential test client (RS256 ID tokens).
pub const CLIENT_ID: &str = "app";
pub const CLIENT_SECRET: &str = "test-secret-for-app-0123456789abcdefghijklmnop";
pub const CLIENT_REDIRECT: &str = "http://localhost:9999/callback";
/// A second confidential client (ES256 ID tokens).
pub const CLIENT2_ID: &str = "app2";
pub const CLIENT2_SECRET: &str = "test-secret-for-app2-0123456789abcdefghijklmno";
pub const CLIENT2_REDIRECT: &str = "http://localhost:9998/callback";
/// A public client (PKCE, no secret).
pub const PUBLIC_ID: &str = "spa";
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1:9997/callback";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct AppOptions {
    pub database: Database,
    pub code_lifetime_seconds: u64,
    /// `login.reauthentication_seconds` (default: the server's, 600).
    pub reauthentication_seconds: Option<u64>,
    pub signup: &'static str,
    /// Use the development mail transport (the outbox file) instead of the SMTP sink.
    pub dev_mail: bool,
    /// Use this database instead of a fresh one (several instances on one database).
    pub database_url: Option<String>,
    /// The master key (base64); instances sharing a database must share it.
    pub master_key: Option<String>,
    /// The body of the `[limits]` table; by default the per-IP request limit is out of the way.
    pub limits: Option<String>,
    /// Send mail to this port instead of the SMTP sink's (e.g. a closed one, to test outages).
    pub smtp_port: Option<u16>,
    /// More keys for the `app` client (e.g. `backchannel_logout_uri = "…"`).
    pub client_extra: Option<String>,
    /// TOML appended to the config (more `[[clients]]`, for instance).
    pub extra: Option<String>,
    /// The body of the `[keys]` table after the master key (rotation settings).
    pub keys: Option<String>,
    /// Listen on this port (default: a free one).
    pub port: Option<u16>,
    /// The public URL, when the instance sits behind a proxy (default: its own address).
    pub issuer: Option<String>,
    /// Environment variables for the server (`KEYWARD_*` overrides, or `KEYWARD_LOG`).
    pub env: Vec<(String, String)>,
}

/// A random master key in the config's format.
pub fn random_master_key() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Default for AppOptions {
    fn default() -> Self {
        AppOptions {
            database: Database::Sqlite,
            code_lifetime_seconds: 600,
            reauthentication_seconds: None,
            signup: "open",
            dev_mail: false,
            database_url: None,
            master_key: None,
            limits: None,
            smtp_port: None,
            client_extra: None,
            extra: None,
            keys: None,
            port: None,
            issuer: None,
            env: Vec::new(),
        }
    }
}

pub struct TestApp {
    pub issuer: String,
    /// The instance's own address (equal to the issuer unless behind a proxy).
    pub direct: String,
    /// The private listener: `/metrics`, `/healthz`, `/readyz`.
    pub metrics: String,
    pub dir: PathBuf,
    pub database_url: String,
    pub smtp: SmtpSink,
    child: Child,
}

/// A loopback port free right now, and never handed out before by this process: the port is
/// released before Keyward binds it, so the kernel may offer it again (a test that picked
/// `listen` and then asked for `metrics.listen` once got the same port twice).
pub fn free_port() -> anyhow::Result<u16> {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..100 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return Ok(port);
        }
    }
    anyhow::bail!("no fresh loopback port after 100 tries")
}

impl TestApp {
    /// Starts `bin` (the `keyward` binary) and waits until `/readyz` answers 200.
    pub async fn spawn(bin: &Path, opts: AppOptions) -> anyhow::Result<TestApp> {
        let smtp = SmtpSink::start().await?;
        let dir = std::env::temp_dir().join(format!("keyward-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let database_url = match (&opts.database_url, opts.database) {
            (Some(url), _) => url.clone(),
            (None, db) => match db {
                Database::Sqlite => format!("sqlite://{}", dir.join("keyward.db").display()),
                Database::Postgres => tokio::task::spawn_blocking(crate::postgres::fresh_database_url).await??,
            },
        };
        let master_key = opts.master_key.clone().unwrap_or_else(random_master_key);
        let limits =
            opts.limits.clone().unwrap_or_else(|| "sign_in_requests_per_ip_per_minute = 1000000\nsign_in_burst_per_ip = 1000000\n".into());
        let port = match opts.port {
            Some(p) => p,
            None => free_port()?,
        };
        let issuer = opts.issuer.clone().unwrap_or_else(|| format!("http://localhost:{port}"));
        let metrics_port = free_port()?;
        let config = format!(
            r#"issuer = "{issuer}"
listen = "127.0.0.1:{port}"
data_dir = "{data}"
shutdown_delay_seconds = 1

[metrics]
listen = "127.0.0.1:{metrics_port}"

[database]
url = "{database_url}"
pool_size = 4

[keys]
master_key = "{master_key}"
{keys}

[limits]
{limits}

[login]
signup = "{signup}"
allowed_domains = ["allowed.test"]
code_lifetime_seconds = {code_lifetime}
{reauth}

{mail}
[try_it]
enabled = true
client_id = "try-it"

[[clients]]
id = "{CLIENT_ID}"
name = "Test App"
secret_hashes = ["{h1}"]
redirect_uris = ["{CLIENT_REDIRECT}"]
post_logout_redirect_uris = ["http://localhost:9999/signed-out"]
first_party = true
{client_extra}

[[clients]]
id = "{CLIENT2_ID}"
name = "Test App Two"
secret_hashes = ["{h2}"]
redirect_uris = ["{CLIENT2_REDIRECT}"]
post_logout_redirect_uris = ["http://localhost:9998/signed-out"]
id_token_signing_alg = "ES256"
first_party = true

[[clients]]
id = "{PUBLIC_ID}"
name = "Test SPA"
type = "public"
redirect_uris = ["{PUBLIC_REDIRECT}"]
first_party = true

[[clients]]
id = "try-it"
name = "Try it"
type = "public"
redirect_uris = ["{issuer}/try/callback"]
first_party = true

{extra}
"#,
            keys = opts.keys.as_deref().unwrap_or(""),
            client_extra = opts.client_extra.as_deref().unwrap_or(""),
            extra = opts.extra.as_deref().unwrap_or(""),
            data = dir.join("data").display(),
            metrics_port = metrics_port,
            signup = opts.signup,
            code_lifetime = opts.code_lifetime_seconds,
            reauth = opts.reauthentication_seconds.map(|s| format!("reauthentication_seconds = {s}")).unwrap_or_default(),
            mail = if opts.dev_mail {
                "[mail]\nfrom = \"Keyward Test <keyward@localhost>\"\ntransport = \"dev\"\n".to_owned()
            } else {
                format!(
                    "[mail]\nfrom = \"Keyward Test <keyward@localhost>\"\ntransport = \"smtp\"\n\n[mail.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n",
                    opts.smtp_port.unwrap_or(smtp.port())
                )
            },
            h1 = hash_secret(CLIENT_SECRET),
            h2 = hash_secret(CLIENT2_SECRET),
        );
        let config_path = dir.join("keyward.toml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.join("keyward.log"))?;
        let mut command = Command::new(bin);
        command
            .args(["--config"])
            .arg(&config_path)
            .arg("serve")
            .env("KEYWARD_LOG", "info")
            .env_remove("KEYWARD_CONFIG")
            .envs(opts.env.iter().map(|(k, v)| (k, v)));
        // The bad-input sweep's knobs are for the test, not the server (whose config overlay
        // refuses unknown KEYWARD_* variables: the documented long run never started).
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KEYWARD_FUZZ_") {
                command.env_remove(name);
            }
        }
        let child = command
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut app = TestApp {
            issuer,
            direct: format!("http://localhost:{port}"),
            metrics: format!("http://127.0.0.1:{metrics_port}"),
            dir,
            database_url,
            smtp,
            child,
        };
        app.wait_ready().await?;
        Ok(app)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("keyward exited with {status} before it was ready; log:\n{}", self.log());
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.metrics)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("keyward did not become ready in 60 s; log:\n{}", self.log())
    }

    /// The server's process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`"TERM"`, `"HUP"`, …) to the server.
    pub fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.pid().to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -{name} failed");
        Ok(())
    }

    /// Waits for the server to exit; its exit status, or an error after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("keyward did not exit within {timeout:?}; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keyward.log")).unwrap_or_default()
    }

    /// The config file the server runs with (for CLI commands against the same setup).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("keyward.toml")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
