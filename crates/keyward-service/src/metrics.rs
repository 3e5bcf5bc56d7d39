//! Prometheus counters, rendered in the text exposition format at `/metrics`. A counter is
//! a family (name and help) with labels; values live in this process (Prometheus sums the
//! instances).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The counter families Keyward exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    SignIns,
    PasskeyRegistrations,
    PasskeySignIns,
    RecoveryCodeSignIns,
    TokensIssued,
    TokensRevoked,
    Logouts,
    Emails,
    RateLimited,
    SignInFailures,
    Argon2,
    Argon2Shed,
}

impl Family {
    const ALL: [Family; 12] = [
        Family::SignIns,
        Family::SignInFailures,
        Family::PasskeyRegistrations,
        Family::PasskeySignIns,
        Family::RecoveryCodeSignIns,
        Family::TokensIssued,
        Family::TokensRevoked,
        Family::Logouts,
        Family::Emails,
        Family::RateLimited,
        Family::Argon2,
        Family::Argon2Shed,
    ];
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::SignIns => "keyward_sign_ins_total",
            Family::PasskeyRegistrations => "keyward_passkey_registrations_total",
            Family::PasskeySignIns => "keyward_passkey_sign_ins_total",
            Family::RecoveryCodeSignIns => "keyward_recovery_code_sign_ins_total",
            Family::TokensIssued => "keyward_tokens_issued_total",
            Family::TokensRevoked => "keyward_token_revocations_total",
            Family::Logouts => "keyward_logouts_total",
            Family::Emails => "keyward_emails_total",
            Family::RateLimited => "keyward_rate_limited_total",
            Family::SignInFailures => "keyward_sign_in_failures_total",
            Family::Argon2 => "keyward_argon2_operations_total",
            Family::Argon2Shed => "keyward_argon2_shed_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Family::SignIns => "Completed sign-ins by method.",
            Family::PasskeyRegistrations => "Passkey registrations by outcome.",
            Family::PasskeySignIns => "Passkey sign-in ceremonies by outcome.",
            Family::RecoveryCodeSignIns => "Sign-ins with a recovery code by outcome.",
            Family::TokensIssued => "Token responses by kind (with or without a refresh token).",
            Family::TokensRevoked => "Grants and access tokens revoked, by reason.",
            Family::Logouts => "Sessions ended, by how; back-channel deliveries by outcome.",
            Family::Emails => "Sign-in and notice emails by outcome (sent, failed).",
            Family::RateLimited => "Requests refused by a database-counted limit, by limit.",
            Family::SignInFailures => "Refused sign-in attempts by reason.",
            Family::Argon2 => "Argon2 hashes of email codes by operation (hash, verify): the CPU and memory sign-in costs.",
            Family::Argon2Shed => "Requests shed with 503 because too much Argon2 work was in flight, by operation (hash, verify, ...).",
        }
    }
}

/// Upper bounds (seconds) of the request-latency histogram buckets.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default, Clone)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Database pool state at render time.
pub struct PoolState {
    pub max: u32,
    pub open: u32,
    pub idle: u32,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(Family, &'static str, &'static str), u64>>,
    http: Mutex<BTreeMap<(String, &'static str, u16), Histogram>>,
}

impl Metrics {
    /// Adds one to `family{label="value"}`.
    pub fn inc(&self, family: Family, label: &'static str, value: &'static str) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry((family, label, value)).or_default() += 1;
    }

    pub fn get(&self, family: Family, label: &'static str, value: &'static str) -> u64 {
        self.counters.lock().unwrap_or_else(|p| p.into_inner()).get(&(family, label, value)).copied().unwrap_or(0)
    }

    /// Records one HTTP request: its route pattern, method, status and duration.
    pub fn observe_http(&self, endpoint: &str, method: &'static str, status: u16, seconds: f64) {
        let mut http = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let h = match http.get_mut(&(endpoint.to_owned(), method, status)) {
            Some(h) => h,
            None => http.entry((endpoint.to_owned(), method, status)).or_default(),
        };
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The text exposition format (version 0.0.4). Every counter family is declared, even
    /// before its first event.
    pub fn render(&self, pool: Option<PoolState>) -> String {
        let mut out = String::new();
        {
            let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
            for family in Family::ALL {
                out.push_str(&format!("# HELP {} {}\n# TYPE {} counter\n", family.name(), family.help(), family.name()));
                for ((_, label, value), n) in counters.iter().filter(|((f, _, _), _)| *f == family) {
                    out.push_str(&format!("{}{{{label}=\"{value}\"}} {n}\n", family.name()));
                }
            }
        }
        let name = "keyward_http_request_duration_seconds";
        out.push_str(&format!("# HELP {name} HTTP requests by route, method and status.\n# TYPE {name} histogram\n"));
        let http = self.http.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for ((endpoint, method, status), h) in &http {
            let labels = format!("endpoint=\"{}\",method=\"{method}\",status=\"{status}\"", endpoint.replace('"', ""));
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i];
                out.push_str(&format!("{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}\n"));
            }
            out.push_str(&format!("{name}_bucket{{{labels},le=\"+Inf\"}} {}\n", h.count));
            out.push_str(&format!("{name}_sum{{{labels}}} {}\n{name}_count{{{labels}}} {}\n", h.sum, h.count));
        }
        if let Some(p) = pool {
            for (metric, help, v) in [
                ("keyward_db_pool_max_connections", "Database pool size.", p.max),
                ("keyward_db_pool_open_connections", "Database connections open.", p.open),
                ("keyward_db_pool_idle_connections", "Open database connections not in use.", p.idle),
            ] {
                out.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n{metric} {v}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_prometheus_text_format() {
        let m = Metrics::default();
        m.inc(Family::PasskeySignIns, "outcome", "success");
        m.inc(Family::PasskeySignIns, "outcome", "success");
        m.inc(Family::PasskeySignIns, "outcome", "failure");
        m.observe_http("/token", "POST", 200, 0.003);
        m.observe_http("/token", "POST", 200, 2.0);
        let text = m.render(Some(PoolState { max: 8, open: 3, idle: 2 }));
        assert!(text.contains("# TYPE keyward_passkey_sign_ins_total counter\n"));
        assert!(text.contains("keyward_passkey_sign_ins_total{outcome=\"success\"} 2\n"));
        assert!(text.contains("keyward_passkey_sign_ins_total{outcome=\"failure\"} 1\n"));
        assert!(text.contains("# TYPE keyward_emails_total counter\n"), "families are declared before their first event");
        let labels = "endpoint=\"/token\",method=\"POST\",status=\"200\"";
        assert!(text.contains(&format!("keyward_http_request_duration_seconds_bucket{{{labels},le=\"0.0025\"}} 0\n")));
        assert!(text.contains(&format!("keyward_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1\n")));
        assert!(text.contains(&format!("keyward_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2\n")));
        assert!(text.contains(&format!("keyward_http_request_duration_seconds_count{{{labels}}} 2\n")));
        assert!(text.contains("keyward_db_pool_open_connections 3\n"));
    }
}
