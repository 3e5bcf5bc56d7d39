//! The cache of JWK Sets fetched from clients' `jwks_uri`s, one entry per client, and when a
//! fetch is allowed (issue 14, finding 5): a set is used for five minutes; an unknown `kid`
//! (the client rotated) may fetch it again at most once a minute; a failed fetch is not tried
//! again for a minute. Otherwise the assertion is refused without calling the client, so
//! nobody can make Keyward hammer a URL, or hang its workers on one, by sending assertions.

use jsonwebtoken::jwk::JwkSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a fetched set is used before it is fetched again.
pub const CACHE_FOR: Duration = Duration::from_secs(300);
/// The least time between two fetches of the same kind (unknown-`kid` refetches, retries).
pub const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// What one client's entry knows.
#[derive(Default)]
pub struct Entry {
    set: Option<Arc<JwkSet>>,
    fetched_at: Option<Instant>,
    /// The last fetch for a missing or expired set, successful or not.
    tried_at: Option<Instant>,
    /// The last fetch for an unknown `kid`.
    kid_refetch_at: Option<Instant>,
}

/// Why a fetch happens (recorded to space the next one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// No set yet, or it expired.
    Missing,
    /// The cached set has no key with the assertion's `kid`.
    UnknownKid,
}

#[derive(Debug)]
pub enum Decision {
    Use(Arc<JwkSet>),
    Fetch(FetchReason),
    /// Refused without fetching; the reason is for the log.
    Refuse(&'static str),
}

fn within(at: Option<Instant>, now: Instant, span: Duration) -> bool {
    at.is_some_and(|at| now.saturating_duration_since(at) < span)
}

impl Entry {
    /// `lacking`: the set the caller already tried, which lacks its `kid` (None: a plain lookup).
    pub fn decide(&self, now: Instant, lacking: Option<&Arc<JwkSet>>) -> Decision {
        let fresh = self.set.as_ref().filter(|_| within(self.fetched_at, now, CACHE_FOR));
        match lacking {
            None => match fresh {
                Some(set) => Decision::Use(set.clone()),
                None if within(self.tried_at, now, MIN_REFETCH_INTERVAL) => {
                    Decision::Refuse("the last fetch of the client's keys failed less than a minute ago")
                }
                None => Decision::Fetch(FetchReason::Missing),
            },
            // Another request fetched a newer set meanwhile: try that one first.
            Some(old) => match fresh {
                Some(set) if !Arc::ptr_eq(set, old) => Decision::Use(set.clone()),
                _ if within(self.kid_refetch_at, now, MIN_REFETCH_INTERVAL) => {
                    Decision::Refuse("unknown kid, and the client's keys were fetched again for one less than a minute ago")
                }
                _ => Decision::Fetch(FetchReason::UnknownKid),
            },
        }
    }

    /// Records a fetch started at `now` and its result (a failure keeps the previous set).
    pub fn record(&mut self, now: Instant, reason: FetchReason, fetched: Option<Arc<JwkSet>>) {
        match reason {
            FetchReason::Missing => self.tried_at = Some(now),
            FetchReason::UnknownKid => self.kid_refetch_at = Some(now),
        }
        if let Some(set) = fetched {
            self.set = Some(set);
            self.fetched_at = Some(now);
        }
    }
}

/// One client's entry, locked across a fetch.
pub type SharedEntry = Arc<tokio::sync::Mutex<Entry>>;

/// Entries by client id, each for the `jwks_uri` it was made for (a reload that changes the
/// URI starts afresh). Each entry has its own async lock, held across a fetch: concurrent
/// requests of one client wait for that fetch and use its result (one fetch).
#[derive(Default)]
pub struct JwksCache {
    entries: Mutex<HashMap<String, (String, SharedEntry)>>,
}

impl JwksCache {
    /// The client's entry; allocates only the first time (the token endpoint's hot path).
    pub fn entry(&self, client_id: &str, uri: &str) -> SharedEntry {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(client_id) {
            Some((for_uri, entry)) if for_uri == uri => entry.clone(),
            _ => {
                let entry = SharedEntry::default();
                entries.insert(client_id.to_owned(), (uri.to_owned(), entry.clone()));
                entry
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Arc<JwkSet> {
        Arc::new(JwkSet { keys: Vec::new() })
    }

    fn fetches(d: &Decision) -> Option<FetchReason> {
        match d {
            Decision::Fetch(r) => Some(*r),
            _ => None,
        }
    }

    #[test]
    fn f5_an_unknown_kid_refetches_at_most_once_per_interval() {
        let t0 = Instant::now();
        let mut e = Entry::default();
        assert_eq!(fetches(&e.decide(t0, None)), Some(FetchReason::Missing));
        let first = set();
        e.record(t0, FetchReason::Missing, Some(first.clone()));
        assert!(matches!(e.decide(t0 + Duration::from_secs(1), None), Decision::Use(s) if Arc::ptr_eq(&s, &first)));

        // A rotation: the first unknown kid fetches again at once…
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(fetches(&e.decide(t1, Some(&first))), Some(FetchReason::UnknownKid));
        let second = set();
        e.record(t1, FetchReason::UnknownKid, Some(second.clone()));
        // …a request that saw the old set uses the new one without fetching…
        assert!(matches!(e.decide(t1, Some(&first)), Decision::Use(s) if Arc::ptr_eq(&s, &second)));
        // …and more unknown kids are refused without a fetch until the interval has passed.
        for later in [1, 30, 59] {
            assert!(matches!(e.decide(t1 + Duration::from_secs(later), Some(&second)), Decision::Refuse(_)), "{later}");
        }
        assert_eq!(fetches(&e.decide(t1 + MIN_REFETCH_INTERVAL, Some(&second))), Some(FetchReason::UnknownKid));
        // A failed refetch keeps the set.
        e.record(t1 + MIN_REFETCH_INTERVAL, FetchReason::UnknownKid, None);
        assert!(matches!(e.decide(t1 + MIN_REFETCH_INTERVAL, None), Decision::Use(s) if Arc::ptr_eq(&s, &second)));
    }

    #[test]
    fn entries_are_per_client_and_a_new_uri_starts_afresh() {
        let cache = JwksCache::default();
        let a = cache.entry("a", "https://a.example/jwks");
        assert!(Arc::ptr_eq(&a, &cache.entry("a", "https://a.example/jwks")));
        assert!(!Arc::ptr_eq(&a, &cache.entry("b", "https://a.example/jwks")));
        assert!(!Arc::ptr_eq(&a, &cache.entry("a", "https://a.example/rotated-jwks")));
    }

    #[test]
    fn f5_a_failed_fetch_is_not_retried_for_an_interval_and_a_set_expires() {
        let t0 = Instant::now();
        let mut e = Entry::default();
        e.record(t0, FetchReason::Missing, None);
        assert!(matches!(e.decide(t0 + Duration::from_secs(59), None), Decision::Refuse(_)));
        assert_eq!(fetches(&e.decide(t0 + MIN_REFETCH_INTERVAL, None)), Some(FetchReason::Missing));
        let t1 = t0 + MIN_REFETCH_INTERVAL;
        e.record(t1, FetchReason::Missing, Some(set()));
        assert!(matches!(e.decide(t1 + CACHE_FOR - Duration::from_secs(1), None), Decision::Use(_)));
        assert_eq!(fetches(&e.decide(t1 + CACHE_FOR, None)), Some(FetchReason::Missing));
    }
}
