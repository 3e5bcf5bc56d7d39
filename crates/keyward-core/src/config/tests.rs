use super::*;

const GOOD: &str = r#"
issuer = "http://localhost:8080"

[[clients]]
id = "app"
name = "App"
secret_hashes = ["xSx6HkD6Pq9OCC5Ed_PvvCHuKWT6n1DUDwdEVAs3Jr8"]
redirect_uris = ["https://app.example/cb"]

[[clients]]
id = "spa"
type = "public"
redirect_uris = ["http://localhost:8080/try/callback"]

[try_it]
enabled = true
client_id = "spa"
"#;

fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::from_toml(Path::new("keyward.toml"), text, &env)
}

fn only_error(r: Result<Config, ConfigErrors>) -> ConfigError {
    let errs = r.expect_err("config should be refused").0;
    assert_eq!(errs.len(), 1, "{errs:?}");
    errs.into_iter().next().expect("one")
}

#[test]
fn a_good_config_loads_with_defaults() {
    let c = load(GOOD, &[]).expect("valid");
    assert_eq!(c.issuer, "http://localhost:8080");
    assert_eq!(c.database_url.expose_secret(), "sqlite://data/keyward.db");
    assert_eq!(c.code_lifetime_seconds, 600);
    assert!(c.client("app").is_some_and(|c| !c.is_public()));
    assert_eq!(c.try_it_client.as_deref(), Some("spa"));
}

#[test]
fn unknown_keys_name_file_key_and_fix() {
    let e = only_error(load(&GOOD.replace("redirect_uris = [\"https", "redirect_urls = [\"https"), &[]));
    assert_eq!(e.source, "keyward.toml");
    assert_eq!(e.key, "clients[0].redirect_urls");
    assert!(e.problem.contains("unknown field"), "{}", e.problem);
    assert!(e.fix.contains("spelling"));
}

#[test]
fn env_overrides_apply_and_are_named_in_errors() {
    let c = load(GOOD, &[("KEYWARD_DATABASE__URL", "postgres://x@db/k"), ("KEYWARD_LOGIN__CODE_LIFETIME_SECONDS", "120")]).expect("valid");
    assert_eq!(c.database_url.expose_secret(), "postgres://x@db/k");
    assert_eq!(c.code_lifetime_seconds, 120);
    let e = only_error(load(GOOD, &[("KEYWARD_DATABSE__URL", "x")]));
    assert_eq!((e.source.as_str(), e.key.as_str()), ("environment", "KEYWARD_DATABSE__URL"));
    let e = only_error(load(GOOD, &[("KEYWARD_LOGIN__CODE_LIFETIME_SECONDS", "ten")]));
    assert_eq!(e.key, "KEYWARD_LOGIN__CODE_LIFETIME_SECONDS");
}

#[test]
fn f9_bad_clients_fail_closed_with_every_error_listed() {
    let text = GOOD.replace("https://app.example/cb", "http://app.example/cb").replace("id = \"spa\"\ntype", "id = \"app\"\ntype");
    let errs = load(&text, &[]).expect_err("refused").0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert!(keys.contains(&"clients[0].redirect_uris[0]"), "{keys:?}");
    assert!(keys.contains(&"clients[1].id"), "{keys:?}");
}

#[test]
fn b5_http_redirect_uris_only_on_loopback() {
    let e = only_error(load(&GOOD.replace("https://app.example/cb", "http://app.example/cb"), &[]));
    assert!(e.problem.contains("loopback"));
    assert!(load(&GOOD.replace("https://app.example/cb", "http://127.0.0.1:9000/cb"), &[]).is_ok());
}

#[test]
fn secrets_never_go_in_the_config() {
    let e = only_error(load(&GOOD.replace("xSx6HkD6Pq9OCC5Ed_PvvCHuKWT6n1DUDwdEVAs3Jr8", "hunter2"), &[]));
    assert_eq!(e.key, "clients[0].secret_hashes[0]");
}

#[test]
fn d2_http_issuer_only_on_loopback_and_code_lifetime_capped() {
    let errs = load(&GOOD.replace("http://localhost:8080\"\n", "http://id.example.com\"\n"), &[]).expect_err("refused").0;
    assert!(errs.iter().any(|e| e.key == "issuer" && e.problem.contains("localhost")), "{errs:?}");
    let e = only_error(load(GOOD, &[("KEYWARD_LOGIN__CODE_LIFETIME_SECONDS", "601")]));
    assert_eq!(e.key, "login.code_lifetime_seconds");
}

#[test]
fn syntax_errors_name_the_line() {
    let e = only_error(load("issuer = \"x\"\n\nnot toml at all", &[]));
    assert_eq!(e.key, "line 3");
}

#[test]
fn audit_retention_days_defaults_to_a_year_and_zero_keeps_events_forever() {
    let c = load(GOOD, &[]).expect("valid");
    assert_eq!(c.audit_retention_days, 365);
    assert_eq!(c.audit_cutoff(1_000_000_000), Some(1_000_000_000 - 365 * 86_400));
    let c = load(&format!("{GOOD}\n[audit]\nretention_days = 30\n"), &[]).expect("valid");
    assert_eq!(c.audit_retention_days, 30);
    let c = load(GOOD, &[("KEYWARD_AUDIT__RETENTION_DAYS", "0")]).expect("valid");
    assert_eq!((c.audit_retention_days, c.audit_cutoff(1_000_000_000)), (0, None));
    let e = only_error(load(&format!("{GOOD}\n[audit]\nretention_days = 40000\n"), &[]));
    assert_eq!(e.key, "audit.retention_days");
    assert!(e.fix.contains("0 to keep"), "{}", e.fix);
    let e = only_error(load(&format!("{GOOD}\n[audit]\nretention = 30\n"), &[]));
    assert_eq!(e.key, "audit.retention");
    assert!(e.problem.contains("unknown field"), "{}", e.problem);
}

#[test]
fn pool_size_defaults_to_the_cores_on_sqlite_and_eight_on_postgres() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().min(8)) as u32;
    assert_eq!(load(GOOD, &[]).expect("valid").pool_size, cores);
    let pg = format!("{GOOD}\n[database]\nurl = \"postgres://keyward@db/keyward\"\n");
    assert_eq!(load(&pg, &[]).expect("valid").pool_size, 8);
    let set = format!("{GOOD}\n[database]\npool_size = 3\n");
    assert_eq!(load(&set, &[]).expect("valid").pool_size, 3);
    let bad = format!("{GOOD}\n[database]\npool_size = 0\n");
    assert!(only_error(load(&bad, &[])).to_string().contains("database.pool_size"));
}

#[test]
fn f15_an_ip_address_issuer_is_refused_by_the_shared_validation_and_the_fix_says_localhost() {
    for issuer in ["http://127.0.0.1:8080", "http://[::1]:8080", "https://192.0.2.7"] {
        let text =
            GOOD.replace("http://localhost:8080\"", &format!("{issuer}\"")).replace("http://localhost:8080/try", &format!("{issuer}/try"));
        let errs = load(&text, &[]).expect_err("an IP issuer cannot be a WebAuthn RP id").0;
        let e = errs.iter().find(|e| e.key == "issuer").unwrap_or_else(|| panic!("{issuer}: {errs:?}"));
        assert_eq!(e.source, "keyward.toml");
        assert!(e.problem.contains("IP address") && e.fix.contains("localhost"), "{e}");
    }
    assert!(load(GOOD, &[]).is_ok(), "localhost stays fine");
}

#[test]
fn f8_a_public_issuer_refuses_the_dev_mail_transport_and_the_development_master_key() {
    let public = GOOD.replace("http://localhost:8080", "https://id.example.com");
    let errs = load(&public, &[]).expect_err("development defaults with a public issuer").0;
    let keys: Vec<&str> = errs.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["mail.transport", "keys.master_key"], "{errs:?}");
    assert!(errs[0].fix.contains("smtp") && errs[0].fix.contains("allow_development_defaults"), "{}", errs[0]);
    assert!(errs[1].fix.contains("master_key_file"), "{}", errs[1]);

    // Fixed: SMTP and a master key.
    let fixed = format!(
        "{public}\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"smtp.example.com\"\n[keys]\nmaster_key = \"{}\"\n",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    );
    assert!(load(&fixed, &[]).is_ok(), "{:?}", load(&fixed, &[]).err());
    // Or the explicit override, also from the environment.
    assert!(load(&format!("allow_development_defaults = true\n{public}"), &[]).is_ok());
    assert!(load(&public, &[("KEYWARD_ALLOW_DEVELOPMENT_DEFAULTS", "true")]).is_ok());
    // Loopback issuers are development: no override needed.
    assert!(load(&GOOD.replace("http://localhost:8080", "https://localhost:8443"), &[]).is_ok());
}

#[test]
fn f3_login_attempts_per_ip_per_minute_defaults_to_120_and_zero_is_refused() {
    assert_eq!(load(GOOD, &[]).expect("valid").limits.login_attempts_per_ip_per_minute, 120);
    let c = load(&format!("{GOOD}\n[limits]\nlogin_attempts_per_ip_per_minute = 40\n"), &[]).expect("valid");
    assert_eq!(c.limits.login_attempts_per_ip_per_minute, 40);
    let c = load(GOOD, &[("KEYWARD_LIMITS__LOGIN_ATTEMPTS_PER_IP_PER_MINUTE", "7")]).expect("valid");
    assert_eq!(c.limits.login_attempts_per_ip_per_minute, 7);
    let e = only_error(load(&format!("{GOOD}\n[limits]\nlogin_attempts_per_ip_per_minute = 0\n"), &[]));
    assert_eq!(e.key, "limits.login_attempts_per_ip_per_minute");
}

/// Known secret values in every place a config can hold one.
const MASTER: &str = "c2VjcmV0LW1hc3Rlci1rZXktMzItYnl0ZXMtZm9yLXQ=";
const SMTP_PASSWORD: &str = "smtp-pass-Wm9vcCBaaW5n";
const DB_PASSWORD: &str = "db-pass-T3BlblNlc2FtZQ";

fn with_secrets(smtp_password: &str) -> String {
    format!(
        "{GOOD}\n[database]\nurl = \"postgres://keyward:{DB_PASSWORD}@db.internal/keyward\"\n[keys]\nmaster_key = \"{MASTER}\"\n\
         [mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"smtp.example.com\"\nusername = \"keyward\"\npassword = \"{smtp_password}\"\n"
    )
}

#[test]
fn f12_debug_of_the_parsed_config_shows_no_secret() {
    let hash = "xSx6HkD6Pq9OCC5Ed_PvvCHuKWT6n1DUDwdEVAs3Jr8";
    let c = load(&with_secrets(SMTP_PASSWORD), &[]).expect("valid");
    let shown = format!("{c:?} {c:#?}");
    for secret in [MASTER, SMTP_PASSWORD, DB_PASSWORD, hash] {
        assert!(!shown.contains(secret), "Debug shows {secret}:\n{shown}");
    }
    // What is not secret is still there to debug with.
    assert!(shown.contains("smtp.example.com") && shown.contains("REDACTED"), "{shown}");
    // The same from the environment and from a password file.
    let dir = std::env::temp_dir().join(format!("keyward-f12-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("smtp-password");
    std::fs::write(&file, format!("{SMTP_PASSWORD}\n")).expect("write");
    let text = with_secrets("x").replace("password = \"x\"", &format!("password_file = {:?}", file.display().to_string()));
    let env = [("KEYWARD_KEYS__MASTER_KEY", MASTER), ("KEYWARD_DATABASE__URL", "postgres://k:db-pass-T3BlblNlc2FtZQ@db/k")];
    let c = load(&text.replace(&format!("master_key = \"{MASTER}\""), ""), &env).expect("valid");
    let shown = format!("{c:?}");
    for secret in [MASTER, SMTP_PASSWORD, DB_PASSWORD] {
        assert!(!shown.contains(secret), "Debug shows {secret}:\n{shown}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn f12_secrets_are_exposed_where_used_and_a_changed_password_is_a_changed_transport() {
    let c = load(&with_secrets(SMTP_PASSWORD), &[]).expect("valid");
    assert_eq!(c.master_key.as_ref().map(|k| k.expose_secret()), Some(MASTER));
    assert!(c.database_url.expose_secret().contains(DB_PASSWORD));
    let MailTransport::Smtp { password, .. } = &c.mail else { panic!("smtp") };
    assert_eq!(password.as_ref().map(|p| p.expose_secret()), Some(SMTP_PASSWORD));
    // Config reload compares transports: same settings, and a new password, are told apart.
    let same = load(&with_secrets(SMTP_PASSWORD), &[]).expect("valid");
    let other = load(&with_secrets("another-password"), &[]).expect("valid");
    assert!(c.mail.same_as(&same.mail));
    assert!(!c.mail.same_as(&other.mail));
    assert!(same_secret(c.master_key.as_ref(), same.master_key.as_ref()));
    assert!(!same_secret(c.master_key.as_ref(), None));
}

#[test]
fn f5_allow_private_jwks_uri_is_per_client_and_off_by_default() {
    let client = |extra: &str| {
        format!(
            "{GOOD}\n[[clients]]\nid = \"job\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\njwks_uri = \"http://127.0.0.1:9/jwks\"\nredirect_uris = [\"https://job.example/cb\"]\n{extra}"
        )
    };
    let keys = |c: &Config| match &c.client("job").expect("job").kind {
        crate::client::ClientKind::PrivateKeyJwt { keys } => keys.clone(),
        other => panic!("{other:?}"),
    };
    let uri = "http://127.0.0.1:9/jwks".to_owned();
    let off = load(&client(""), &[]).expect("valid");
    assert_eq!(keys(&off), crate::client::ClientKeys::Uri { uri: uri.clone(), allow_private: false });
    let on = load(&client("allow_private_jwks_uri = true"), &[]).expect("valid");
    assert_eq!(keys(&on), crate::client::ClientKeys::Uri { uri, allow_private: true });
    let e = only_error(load(&GOOD.replace("name = \"App\"", "name = \"App\"\nallow_private_jwks_uri = true"), &[]));
    assert_eq!(e.key, "clients[0].allow_private_jwks_uri");
}
