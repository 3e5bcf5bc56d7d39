//! The command line: config check names file, key and fix; clients new makes a working
//! secret; migrate applies the schema.

use crate::common::bin;
use std::process::Command;

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-cli-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(name);
    let _ = std::fs::write(&path, text);
    path
}

#[test]
fn config_check_accepts_the_example_config() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/keyward.toml");
    let out = Command::new(bin()).args(["config", "check", example]).env_remove("KEYWARD_CONFIG").output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK (3 clients"));
}

#[test]
fn config_check_names_the_file_the_key_and_the_fix() {
    let path = temp_file(
        "bad.toml",
        "issuer = \"http://id.example.com\"\n[[clients]]\nid = \"a\"\nsecret_hashes = [\"plaintext-secret\"]\nredirect_uris = [\"http://app.example.com/cb\"]\n",
    );
    let out = Command::new(bin()).args(["config", "check"]).arg(&path).env_remove("KEYWARD_CONFIG").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for key in ["`issuer`", "`clients[0].secret_hashes[0]`", "`clients[0].redirect_uris[0]`"] {
        assert!(err.contains(&format!("{file}: {key}")), "{key} not reported:\n{err}");
    }
    assert!(err.contains("3 problems") && err.matches("fix:").count() == 3, "{err}");

    let typo = temp_file("typo.toml", "issuer = \"http://localhost:8080\"\n[login]\nsingup = \"open\"\n");
    let out = Command::new(bin()).args(["config", "check"]).arg(&typo).env_remove("KEYWARD_CONFIG").output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`login.singup`") && err.contains("unknown field"), "{err}");
}

#[test]
fn clients_new_prints_a_secret_whose_hash_is_the_snippet() {
    let out =
        Command::new(bin()).args(["clients", "new", "--id", "shop", "--redirect-uri", "https://shop.example/cb"]).output().expect("runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let secret = stderr.lines().map(str::trim).find(|l| l.len() == 43).expect("a secret line").to_owned();
    let snippet = String::from_utf8_lossy(&out.stdout);
    assert!(snippet.contains(&keyward_core::secret::hash_secret(&secret)));
    assert!(!snippet.contains(&secret), "the secret itself never goes into the config");
    let config = temp_file(
        "new.toml",
        &format!(
            "issuer = \"https://id.example.com\"\n# Only the checks under test: no mail server or master key in these snippets.\nallow_development_defaults = true\n{snippet}"
        ),
    );
    let check = Command::new(bin()).args(["config", "check"]).arg(&config).env_remove("KEYWARD_CONFIG").output().expect("runs");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn migrate_applies_the_schema_once() {
    let dir = std::env::temp_dir().join(format!("keyward-migrate-{}", std::process::id()));
    let config = temp_file("migrate.toml", &format!("issuer = \"http://localhost:8080\"\ndata_dir = \"{}\"\n", dir.display()));
    let first = Command::new(bin()).args(["migrate", "--config"]).arg(&config).output().expect("runs");
    let out = String::from_utf8_lossy(&first.stdout);
    let applied: usize = out.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(applied >= 1 && out.contains("applied"), "{out}{}", String::from_utf8_lossy(&first.stderr));
    let again = Command::new(bin()).args(["migrate", "--config"]).arg(&config).output().expect("runs");
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 migrations applied"));
    assert!(dir.join("keyward.db").exists());
}

#[test]
fn f7_db_cleanup_removes_expired_sign_in_codes() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use keyward_testkit::app::*;
        let app = crate::common::spawn(AppOptions { code_lifetime_seconds: 1, ..Default::default() }).await.expect("app");
        let browser = keyward_testkit::browser::Browser::new().expect("browser");
        let rp = crate::common::rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await.expect("rp");
        let (_, attempt, csrf) = crate::common::open_login(&app, &browser, &crate::common::auth_request(&rp).url).await.expect("login");
        crate::common::request_code(&app, &browser, &attempt, &csrf, "sweep@example.com").await.expect("code");
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await; // black-box: `keyward db cleanup` runs on the wall clock: the code must expire in real time
        let mut cmd = Command::new(bin());
        cmd.arg("--config").arg(app.config_path()).args(["db", "cleanup"]);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs")).await.expect("joined");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(" 1 email codes"), "{stdout}");
        // A second run finds nothing left to remove of those.
        let mut again = Command::new(bin());
        again.arg("--config").arg(app.config_path()).args(["db", "cleanup"]);
        let out = tokio::task::spawn_blocking(move || again.output().expect("runs")).await.expect("joined");
        assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 email codes"));
    });
}
