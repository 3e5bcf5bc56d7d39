//! Throwaway PostgreSQL for tests: [`PostgresServer`] runs a private server in a
//! temp dir (stopped on drop), [`shared_server_url`] gives one server per test
//! process (or `KEYWARD_TEST_DATABASE_URL`), and [`fresh_database_url`] creates
//! a uniquely named database on it.

use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use diesel::{Connection as _, PgConnection, RunQueryDsl as _};

/// Env var pointing at an existing server (`postgres://user@host:port`).
pub const DATABASE_URL_ENV: &str = "KEYWARD_TEST_DATABASE_URL";

/// The database role created by `initdb` and used in every URL.
const ROLE: &str = "keyward";

/// A private PostgreSQL server, stopped with `pg_ctl stop -m fast` on drop.
#[derive(Debug)]
pub struct PostgresServer {
    dir: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
    as_postgres: bool,
}

impl PostgresServer {
    /// Initialises a cluster in a fresh temp dir, starts it on a free port of
    /// 127.0.0.1 and waits until it accepts connections.
    pub fn start() -> anyhow::Result<PostgresServer> {
        let initdb = find_binary("initdb")?;
        let pg_ctl = find_binary("pg_ctl")?;
        let as_postgres = running_as_root()?;
        let dir = std::env::temp_dir().join(format!("keyward-pg-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if as_postgres {
            // initdb refuses to run as root: hand the directory to `postgres`.
            run(Command::new("chown").arg("postgres:postgres").arg(&dir), "chown")?;
        }
        // From here on, dropping the value stops the server and removes `dir`.
        let mut server = PostgresServer { dir, port: 0, pg_ctl, as_postgres };
        let data = server.dir.join("data");
        let mut cmd = server.command(&initdb);
        cmd.arg("-D").arg(&data).args(["-A", "trust", "-U", ROLE, "-E", "UTF8", "--no-locale", "--no-sync"]);
        run(&mut cmd, "initdb")?;

        let mut last_err = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.pg_ctl_start(&data) {
                Ok(()) => {
                    server.wait_ready(Duration::from_secs(30))?;
                    tracing::debug!(port = server.port, dir = %server.dir.display(), "PostgreSQL started");
                    return Ok(server);
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("PostgreSQL did not start")))
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.server_url())
    }

    /// The server URL without a database: `postgres://keyward@127.0.0.1:PORT`.
    pub fn server_url(&self) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}", self.port)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir holding the cluster (`data/`) and the server log (`log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The postmaster's pid, from `data/postmaster.pid` (its first line).
    pub fn postmaster_pid(&self) -> anyhow::Result<u32> {
        let path = self.dir.join("data/postmaster.pid");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        text.lines().next().and_then(|l| l.trim().parse().ok()).with_context(|| format!("no pid in {}", path.display()))
    }

    /// Stops the server (an outage), keeping its data for [`Self::resume`].
    pub fn pause(&self) -> anyhow::Result<()> {
        let mut cmd = self.command(&self.pg_ctl);
        cmd.arg("-D").arg(self.dir.join("data")).args(["-m", "fast", "-w", "stop"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        run(&mut cmd, "pg_ctl stop")
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend): connections stay
    /// open and TCP still accepts, but nothing answers — a hung database, not a down one.
    pub fn freeze(&self) -> anyhow::Result<()> {
        self.signal_all("STOP")
    }

    /// Undoes [`Self::freeze`] (SIGCONT).
    pub fn thaw(&self) -> anyhow::Result<()> {
        self.signal_all("CONT")
    }

    fn signal_all(&self, signal: &str) -> anyhow::Result<()> {
        let postmaster = self.postmaster_pid()?;
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc")?.filter_map(Result::ok) {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ')'.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        let status = Command::new("kill").arg(format!("-{signal}")).args(pids.iter().map(|p| p.to_string())).status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pids:?} failed");
        Ok(())
    }

    /// Starts the paused server again on the same port and waits until it accepts connections.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.pg_ctl_start(&self.dir.join("data"))?;
        self.wait_ready(Duration::from_secs(30))
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.stdin(Stdio::null()).env_remove("PGDATA").env_remove("PGPORT");
        cmd
    }

    fn pg_ctl_start(&self, data: &Path) -> anyhow::Result<()> {
        let log = self.dir.join("log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let err_path = self.dir.join("pg_ctl.err");
        let mut cmd = self.command(&self.pg_ctl);
        cmd.arg("-D").arg(data).arg("-o").arg(opts).arg("-l").arg(&log);
        cmd.args(["-w", "-t", "60", "start"]);
        // Not pipes: the postmaster could inherit them and block `output()`.
        cmd.stdout(Stdio::null()).stderr(File::create(&err_path)?);
        let status = cmd.status().context("running pg_ctl start")?;
        if !status.success() {
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("pg_ctl start failed ({status}): {err}\n--- server log ---\n{log}");
        }
        Ok(())
    }

    fn wait_ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = self.url("postgres");
        loop {
            match PgConnection::establish(&url) {
                Ok(_) => return Ok(()),
                Err(err) if Instant::now() >= deadline => {
                    bail!("PostgreSQL on port {} not ready: {err}", self.port)
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if self.port != 0 {
            let mut cmd = self.command(&self.pg_ctl);
            cmd.arg("-D").arg(self.dir.join("data")).args(["-m", "fast", "-w", "stop"]);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            if let Err(err) = cmd.status() {
                tracing::warn!(error = %err, "could not stop test PostgreSQL");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static SHARED: OnceLock<String> = OnceLock::new();
static SHARED_INIT: Mutex<()> = Mutex::new(());

/// Returns a server URL (`postgres://keyward@127.0.0.1:PORT`, no database):
/// `KEYWARD_TEST_DATABASE_URL` if set, else one [`PostgresServer`] started on
/// first use and shared by the whole test process. A watchdog shell process
/// stops that server and removes its temp dir once this process has exited.
pub fn shared_server_url() -> anyhow::Result<String> {
    if let Some(url) = SHARED.get() {
        return Ok(url.clone());
    }
    let _guard = SHARED_INIT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(url) = SHARED.get() {
        return Ok(url.clone());
    }
    let url = match std::env::var(DATABASE_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => strip_database(url.trim()),
        _ => {
            let server = PostgresServer::start()?;
            let url = server.server_url();
            spawn_reaper(&server)?;
            // The watchdog owns the cleanup now; statics are never dropped anyway.
            std::mem::forget(server);
            url
        }
    };
    Ok(SHARED.get_or_init(|| url).clone())
}

/// Creates a fresh, uniquely named database (`kw_test_<uuid>`) on the shared
/// server and returns its full URL.
pub fn fresh_database_url() -> anyhow::Result<String> {
    let server = shared_server_url()?;
    create_database(&server)
}

/// Creates a uniquely named database on the server at `server_url` (no database part).
pub fn create_database(server_url: &str) -> anyhow::Result<String> {
    let name = format!("kw_test_{}", uuid::Uuid::new_v4().simple());
    // The throwaway server has no TLS or Kerberos; saying so keeps libpq from initialising
    // OpenSSL and GSSAPI, whose exit handlers can abort a test process while a pool thread
    // is still connecting.
    let admin_url = format!("{server_url}/postgres?sslmode=disable&gssencmode=disable");
    let mut conn = PgConnection::establish(&admin_url).with_context(|| format!("connecting to {admin_url}"))?;
    diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).with_context(|| format!("creating database {name}"))?;
    Ok(format!("{server_url}/{name}?sslmode=disable&gssencmode=disable"))
}

/// `postgres://u@h:p/db?x` → `postgres://u@h:p` (query parameters are dropped).
fn strip_database(url: &str) -> String {
    let authority_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[authority_start..].find(['/', '?']).map(|i| authority_start + i).unwrap_or(url.len());
    url[..end].to_owned()
}

/// Stops `server` after this process exits, from a detached shell loop.
fn spawn_reaper(server: &PostgresServer) -> anyhow::Result<()> {
    let stop =
        if server.as_postgres { "runuser -u postgres -- \"$2\" -D \"$3/data\" -m fast stop" } else { "\"$2\" -D \"$3/data\" -m fast stop" };
    let script = format!("while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf \"$3\"");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("keyward-pg-reaper")
        .arg(std::process::id().to_string())
        .arg(&server.pg_ctl)
        .arg(&server.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning the PostgreSQL reaper")?;
    Ok(())
}

/// Finds `name` on PATH, then in `/usr/lib/postgresql/*/bin` (newest first).
fn find_binary(name: &str) -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let version = e.file_name().to_string_lossy().parse().unwrap_or(0);
                    (version, e.path().join("bin"))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    on_path
        .into_iter()
        .chain(versions.into_iter().map(|(_, dir)| dir))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{name}` not found on PATH or in /usr/lib/postgresql/*/bin"))
}

fn running_as_root() -> anyhow::Result<bool> {
    Ok(std::fs::metadata("/proc/self").context("reading /proc/self to find our uid")?.uid() == 0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = cmd.output().with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!("{what} failed ({}): {}{}", output.status, String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}
