//! `KEYWARD_*` environment overrides. `KEYWARD_ISSUER` sets `issuer`; a double underscore
//! descends into a table: `KEYWARD_DATABASE__URL` sets `[database] url`,
//! `KEYWARD_MAIL__SMTP__PASSWORD` sets `[mail.smtp] password`. Values are set as strings;
//! the typed layer accepts strings for numbers and booleans.

use super::ConfigError;

/// Variables that configure the process rather than the file.
const NOT_OVERRIDES: &[&str] = &["KEYWARD_CONFIG", "KEYWARD_LOG", "KEYWARD_LOG_FORMAT"];

/// Returns the dotted key path each variable set, for error messages.
pub fn overlay(table: &mut toml::Table, env: &[(String, String)]) -> Result<Vec<(String, String)>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut set = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix("KEYWARD_") else {
            continue;
        };
        if NOT_OVERRIDES.contains(&name.as_str()) || name.starts_with("KEYWARD_TEST_") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.iter().any(|p| p.is_empty()) || path.first().is_some_and(|p| p == "clients") {
            errors.push(ConfigError {
                source: "environment".into(),
                key: name.clone(),
                problem: "this variable does not name a config key".into(),
                fix: "use KEYWARD_<KEY> or KEYWARD_<TABLE>__<KEY>, e.g. KEYWARD_DATABASE__URL; clients are set in the file".into(),
            });
            continue;
        }
        match set_path(table, &path, value) {
            Ok(()) => set.push((path.join("."), name.clone())),
            Err(p) => errors.push(ConfigError {
                source: "environment".into(),
                key: name.clone(),
                problem: format!("`{p}` is a value, not a table"),
                fix: "remove the extra __ part of the name".into(),
            }),
        }
    }
    if errors.is_empty() { Ok(set) } else { Err(errors) }
}

/// Sets `path` to `value`, creating tables on the way; `Err` names a segment that is not a table.
fn set_path(table: &mut toml::Table, path: &[String], value: &str) -> Result<(), String> {
    match path {
        [] => Ok(()),
        [last] => {
            table.insert(last.clone(), toml::Value::String(value.to_owned()));
            Ok(())
        }
        [first, rest @ ..] => match table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new())) {
            toml::Value::Table(t) => set_path(t, rest, value),
            _ => Err(first.clone()),
        },
    }
}
