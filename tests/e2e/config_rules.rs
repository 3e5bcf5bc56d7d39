//! `keyward config check` and `serve` run the same validation (issue 14, findings 8 and 15):
//! what the check passes, `serve` starts with, and what `serve` refuses, the check refuses
//! first — before anything is created.

use crate::common::*;
use std::process::Command;

/// Writes `config` into a fresh directory; returns it and the config path.
fn config_file(config: &str) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!("keyward-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("keyward.toml");
    std::fs::write(&path, config.replace("DATA", &dir.join("data").display().to_string()))?;
    Ok((dir, path))
}

/// Runs `keyward config check FILE` and `keyward --config FILE serve`; both must refuse with
/// exit status 2 and the same message, naming the file, `key` and the fix `fix`, and `serve`
/// must not have created the data directory (database, keys).
fn both_refuse(config: &str, key: &str, fix: &str) -> anyhow::Result<()> {
    let (dir, path) = config_file(config)?;
    let check = Command::new(bin()).args(["config", "check"]).arg(&path).env_remove("KEYWARD_CONFIG").output()?;
    let serve = Command::new(bin()).arg("--config").arg(&path).arg("serve").env_remove("KEYWARD_CONFIG").output()?;
    for (what, out) in [("config check", &check), ("serve", &serve)] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what} must refuse: {stderr}{}", String::from_utf8_lossy(&out.stdout));
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(&format!("`{key}`")) && stderr.contains(fix),
            "{what}: {stderr}"
        );
    }
    assert_eq!(check.stderr, serve.stderr, "the same validation, the same words");
    assert!(!dir.join("data").exists(), "serve refused before creating the database or keys");
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[test]
fn f15_config_check_refuses_an_ip_address_issuer_as_serve_does_and_says_localhost() -> anyhow::Result<()> {
    both_refuse("issuer = \"http://127.0.0.1:8080\"\ndata_dir = \"DATA\"\n", "issuer", "localhost")
}

#[test]
fn f8_development_defaults_with_a_public_issuer_stop_serve_and_config_check() -> anyhow::Result<()> {
    let public = "issuer = \"https://id.example.com\"\ndata_dir = \"DATA\"\n[keys]\nmaster_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\n[mail]\ntransport = \"dev\"\n";
    both_refuse(public, "mail.transport", "transport = \"smtp\"")?;
    let no_master_key =
        "issuer = \"https://id.example.com\"\ndata_dir = \"DATA\"\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"127.0.0.1\"\n";
    both_refuse(no_master_key, "keys.master_key", "master_key_file")?;
    // The documented override: the check passes it.
    let (dir, path) = config_file(&format!("allow_development_defaults = true\n{public}"))?;
    let check = Command::new(bin()).args(["config", "check"]).arg(&path).env_remove("KEYWARD_CONFIG").output()?;
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
