//! The config file as written: every table denies unknown keys, numbers and booleans are
//! also accepted as strings (so `KEYWARD_*` environment overrides can set them). Secrets
//! are [`SecretString`]s from the moment they are read, so no `Debug` prints them.

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub issuer: String,
    #[serde(default)]
    pub listen: Option<String>,
    #[serde(default)]
    pub data_dir: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub shutdown_delay_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub allow_development_defaults: Option<bool>,
    #[serde(default)]
    pub database: RawDatabase,
    #[serde(default)]
    pub keys: RawKeys,
    #[serde(default)]
    pub login: RawLogin,
    #[serde(default)]
    pub tokens: RawTokens,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub try_it: RawTryIt,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub network: RawNetwork,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub clients: Vec<RawClient>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    /// May carry a password (`postgres://user:password@host/db`).
    pub url: Option<SecretString>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub pool_size: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    pub master_key: Option<SecretString>,
    pub master_key_file: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub rotate_after_days: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub publish_ahead_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub reload_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    pub signup: Option<String>,
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub code_lifetime_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub session_idle_minutes: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub session_lifetime_hours: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub reauthentication_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub id_token_lifetime_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub access_token_lifetime_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub refresh_token_idle_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub refresh_token_lifetime_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMail {
    pub from: Option<String>,
    pub transport: Option<String>,
    pub outbox: Option<String>,
    #[serde(default)]
    pub smtp: RawSmtp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub host: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub port: Option<u64>,
    pub tls: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    pub password_file: Option<String>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub send_window_minutes: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sends_per_address: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sends_per_ip: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub code_tries_per_address_per_hour: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub login_attempts_per_ip_per_minute: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sign_in_requests_per_ip_per_minute: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub sign_in_burst_per_ip: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub tls_cert_file: Option<String>,
    pub tls_key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTryIt {
    #[serde(default, deserialize_with = "lenient_bool")]
    pub enabled: Option<bool>,
    pub client_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    #[serde(default, deserialize_with = "lenient_u64")]
    pub retention_days: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub secret_hashes: Vec<SecretString>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub require_pkce: Option<bool>,
    pub id_token_signing_alg: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub first_party: Option<bool>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub refresh_tokens: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub jwks: Option<String>,
    pub jwks_uri: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub allow_private_jwks_uri: Option<bool>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub access_token_lifetime_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub id_token_lifetime_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub refresh_token_idle_seconds: Option<u64>,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub refresh_token_lifetime_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrText {
    Bool(bool),
    Text(String),
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Num(n) => Ok(Some(n)),
        NumOrText::Text(t) => {
            t.trim().parse().map(Some).map_err(|_| serde::de::Error::custom(format!("expected a whole number, found {t:?}")))
        }
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match BoolOrText::deserialize(d)? {
        BoolOrText::Bool(b) => Ok(Some(b)),
        BoolOrText::Text(t) => match t.trim() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom(format!("expected true or false, found {t:?}"))),
        },
    }
}
