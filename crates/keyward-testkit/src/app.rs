//! Starts Keyward for a test: a fresh data directory, a fresh SQLite file or PostgreSQL
//! database and a real SMTP sink for its mail. [`TestApp::spawn`] runs the application in
//! process (the same [`keyward::app::build`] as `keyward serve`, on `127.0.0.1:0`, on a
//! [`ManualClock`] the test advances); [`TestApp::spawn_binary`] runs the real binary as a
//! subprocess for the black-box tests (signals, reload, exit codes, its log). Either stops
//! when the [`TestApp`] is dropped.

use crate::browser::Browser;
use crate::smtp::SmtpSink;
use anyhow::{Context as _, bail};
use keyward_core::ManualClock;
use keyward_core::secret::hash_secret;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
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
    /// Listen on this port (default: in process, whatever `127.0.0.1:0` gets; the binary, a
    /// free one).
    pub port: Option<u16>,
    /// The public URL, when the instance sits behind a proxy (default: its own address).
    pub issuer: Option<String>,
    /// Serve TLS directly with this certificate chain and key (PEM files): the issuer and
    /// `direct` are `https://localhost:<port>`.
    pub tls: Option<(PathBuf, PathBuf)>,
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
            tls: None,
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
    /// The clock the in-process app runs on; `app.clock.advance(..)` moves its "now".
    pub clock: TestClock,
    /// A cookie-keeping client that never follows redirects.
    pub client: Browser,
    server: Server,
}

/// The app's clock: a [`ManualClock`] in process, starting at the wall clock's now; the binary
/// runs on the wall clock, which a test cannot move (advancing it panics).
#[derive(Clone)]
pub struct TestClock(Option<(Arc<ManualClock>, Wake)>);

/// Wakes the app's background work after its clock moved.
type Wake = Arc<dyn Fn() + Send + Sync>;

impl TestClock {
    /// Moves the in-process app's "now" forward by `by`, and wakes its background work
    /// (back-channel logout delivery) so that what became due runs now.
    #[allow(clippy::expect_used, reason = "test harness: misuse fails the test with this message")]
    pub fn advance(&self, by: Duration) {
        let (clock, wake) = self.0.as_ref().expect("the binary runs on the wall clock: use TestApp::spawn to advance time");
        clock.advance(time::Duration::try_from(by).expect("a duration a clock can take"));
        wake();
    }

    /// Brings the app's clock up to the wall clock (if behind): the CLI commands a test runs
    /// stamp rows with the wall clock.
    pub fn catch_up(&self) {
        if let Some((clock, wake)) = &self.0 {
            let behind = time::OffsetDateTime::now_utc() - keyward_core::Clock::now(clock.as_ref());
            if behind.is_positive() {
                clock.advance(behind);
                wake();
            }
        }
    }

    /// The app's "now" in Unix seconds (the wall clock's for the binary).
    pub fn unix(&self) -> i64 {
        match &self.0 {
            Some((clock, _)) => keyward_core::Clock::unix(clock.as_ref()),
            None => time::OffsetDateTime::now_utc().unix_timestamp(),
        }
    }
}

enum Server {
    Binary(Child),
    InProcess(InProcess),
}

/// The in-process app: its own thread running an actix System.
struct InProcess {
    state: Arc<keyward_web::WebState>,
    handle: actix_web::dev::ServerHandle,
    private: Option<actix_web::dev::ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `https` when the instance serves TLS itself.
fn scheme(opts: &AppOptions) -> &'static str {
    if opts.tls.is_some() { "https" } else { "http" }
}

/// What the app thread hands back once the app listens.
struct Started {
    handle: actix_web::dev::ServerHandle,
    private: Option<actix_web::dev::ServerHandle>,
    state: Arc<keyward_web::WebState>,
    first_sweep: tokio::sync::oneshot::Receiver<()>,
}

/// What both modes prepare: the sink, the directories, the database and the config file.
struct Setup {
    smtp: SmtpSink,
    dir: PathBuf,
    database_url: String,
    issuer: String,
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

impl Setup {
    /// Writes `keyward.toml` for an instance listening on `port` (metrics on `metrics_port`).
    async fn write(opts: &AppOptions, port: u16, metrics_port: u16) -> anyhow::Result<Setup> {
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
        let issuer = opts.issuer.clone().unwrap_or_else(|| format!("{}://localhost:{port}", scheme(opts)));
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
{network}
"#,
            network = match &opts.tls {
                Some((cert, key)) => format!("[network]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n", cert.display(), key.display()),
                None => String::new(),
            },
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
        std::fs::write(dir.join("keyward.toml"), config)?;
        Ok(Setup { smtp, dir, database_url, issuer })
    }
}

impl TestApp {
    /// Runs Keyward in process on a [`ManualClock`] starting at the wall clock's now: the same
    /// App as `serve`, bound to `127.0.0.1:0` (or `opts.port`), on its own actix System thread.
    /// `KEYWARD_*` entries of `opts.env` are config overrides; `KEYWARD_LOG` has no effect
    /// (tracing is process-global: tests that read the log use [`TestApp::spawn_binary`]).
    pub async fn spawn(opts: AppOptions) -> anyhow::Result<TestApp> {
        let public = TcpListener::bind(("127.0.0.1", opts.port.unwrap_or(0)))?;
        let metrics = TcpListener::bind("127.0.0.1:0")?;
        let (port, metrics_port) = (public.local_addr()?.port(), metrics.local_addr()?.port());
        let setup = Setup::write(&opts, port, metrics_port).await?;
        let direct = format!("{}://localhost:{port}", scheme(&opts));
        let mut env: Vec<(String, String)> =
            opts.env.iter().filter(|(k, _)| k.starts_with("KEYWARD_") && k != "KEYWARD_LOG").cloned().collect();
        env.sort();
        let config = keyward_core::config::Config::load(&setup.dir.join("keyward.toml"), &env).map_err(|e| anyhow::anyhow!("{e}"))?;
        let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
        let listeners = keyward::app::Listeners { public: Some(public), metrics: Some(metrics) };
        let (app, state) = InProcess::start(config, clock.clone(), listeners).await?;
        let wake: Wake = Arc::new(move || state.backchannel.notify_one());
        let server = Server::InProcess(app);
        Ok(TestApp {
            issuer: setup.issuer,
            direct,
            metrics: format!("http://127.0.0.1:{metrics_port}"),
            dir: setup.dir,
            database_url: setup.database_url,
            smtp: setup.smtp,
            clock: TestClock(Some((clock, wake))),
            client: Browser::new()?,
            server,
        })
    }

    /// Starts `bin` (the `keyward` binary) and waits until `/readyz` answers 200.
    pub async fn spawn_binary(bin: &Path, opts: AppOptions) -> anyhow::Result<TestApp> {
        let port = match opts.port {
            Some(p) => p,
            None => free_port()?,
        };
        let metrics_port = free_port()?;
        let Setup { smtp, dir, database_url, issuer } = Setup::write(&opts, port, metrics_port).await?;
        let config_path = dir.join("keyward.toml");
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
            direct: format!("{}://localhost:{port}", scheme(&opts)),
            metrics: format!("http://127.0.0.1:{metrics_port}"),
            dir,
            database_url,
            smtp,
            clock: TestClock(None),
            client: Browser::new()?,
            server: Server::Binary(child),
        };
        app.wait_ready().await?;
        Ok(app)
    }

    /// The subprocess, for what only the binary does (signals, exit status, its log).
    #[allow(clippy::panic, reason = "test harness: misuse fails the test with this message")]
    fn child(&mut self) -> &mut Child {
        match &mut self.server {
            Server::Binary(child) => child,
            Server::InProcess(_) => panic!("an in-process TestApp has no process: use TestApp::spawn_binary"),
        }
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child().try_wait()? {
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

    /// Waits until no email is being sent (each is sent off the request path, counted from
    /// the request that asked for it): afterwards the sink holds every mail the requests so far
    /// caused, so "no mail was sent" can be asserted from its state. In process only.
    pub async fn mail_settled(&self) -> anyhow::Result<()> {
        let Server::InProcess(app) = &self.server else {
            bail!("the binary's mail queue is not visible: use TestApp::spawn");
        };
        let left = app.state.finish_mail(Duration::from_secs(15)).await;
        anyhow::ensure!(left == 0, "{left} emails still being sent after 15 s");
        Ok(())
    }

    /// The server's process id (for signals).
    #[allow(clippy::panic, reason = "test harness: misuse fails the test with this message")]
    pub fn pid(&self) -> u32 {
        match &self.server {
            Server::Binary(child) => child.id(),
            Server::InProcess(_) => panic!("an in-process TestApp has no process: use TestApp::spawn_binary"),
        }
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
            if let Some(status) = self.child().try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("keyward did not exit within {timeout:?}; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the server has logged so far (the binary only: in process, tracing is global).
    #[allow(clippy::panic, reason = "test harness: misuse fails the test with this message")]
    pub fn log(&self) -> String {
        if let Server::InProcess(_) = self.server {
            panic!("an in-process TestApp keeps no log: use TestApp::spawn_binary to read it");
        }
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

impl InProcess {
    /// Builds the app on a thread of its own (an actix System) and returns once it listens
    /// and its sweep at start is done; also its state (to wake background work).
    async fn start(
        config: keyward_core::config::Config,
        clock: Arc<ManualClock>,
        listeners: keyward::app::Listeners,
    ) -> anyhow::Result<(InProcess, Arc<keyward_web::WebState>)> {
        let (tx, rx) = std::sync::mpsc::channel::<Result<Started, String>>();
        let thread = std::thread::Builder::new().name("keyward-app".into()).spawn(move || {
            // Tasks still holding the mailer are dropped after the System's runtime is gone;
            // lettre's pool then wants a Tokio context to close its connections in.
            let fallback = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let _context = fallback.as_ref().map(|rt| rt.enter());
            actix_web::rt::System::new().block_on(async move {
                match keyward::app::build(Arc::new(config), clock, listeners) {
                    Ok(running) => {
                        let started = Started {
                            handle: running.handle.clone(),
                            private: running.private.clone(),
                            state: running.state.clone(),
                            first_sweep: running.first_sweep,
                        };
                        let _ = tx.send(Ok(started));
                        let _ = running.server.await;
                    }
                    Err(code) => {
                        let _ = tx.send(Err(format!("keyward did not start ({code:?}); its error is on stderr")));
                    }
                }
            })
        })?;
        let started = tokio::task::spawn_blocking(move || rx.recv()).await?.context("the app thread ended")?.map_err(anyhow::Error::msg)?;
        let app = InProcess { state: started.state.clone(), handle: started.handle, private: started.private, thread: Some(thread) };
        tokio::time::timeout(Duration::from_secs(30), started.first_sweep).await.context("the sweep at start did not finish")??;
        Ok((app, started.state))
    }

    fn stop(&mut self) {
        // The stop command is sent when `stop` is called; the returned future only waits.
        drop(self.handle.stop(false));
        if let Some(private) = &self.private {
            drop(private.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match &mut self.server {
            Server::Binary(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Server::InProcess(app) => app.stop(),
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
