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
        }
    }
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(Family, &'static str, &'static str), u64>>,
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

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let mut last = None;
        for ((family, label, value), n) in counters.iter() {
            if last != Some(*family) {
                out.push_str(&format!("# HELP {} {}\n# TYPE {} counter\n", family.name(), family.help(), family.name()));
                last = Some(*family);
            }
            out.push_str(&format!("{}{{{label}=\"{value}\"}} {n}\n", family.name()));
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
        let text = m.render();
        assert!(text.contains("# TYPE keyward_passkey_sign_ins_total counter\n"));
        assert!(text.contains("keyward_passkey_sign_ins_total{outcome=\"success\"} 2\n"));
        assert!(text.contains("keyward_passkey_sign_ins_total{outcome=\"failure\"} 1\n"));
        assert_eq!(text.matches("# TYPE").count(), 1);
    }
}
