//! Bounds the Argon2 work in flight (issue 14, finding 21). Each Argon2 hash of an email code
//! holds 19 MiB; a flood of code requests or submissions used to run as many at once as
//! there were blocking threads, and memory grew with the flood. The gate lets `slots` hashes
//! run (one per core) and `queue` more wait a bounded time; past that, a request is shed:
//! the caller answers 503 with `Retry-After` and `keyward_argon2_shed_total` counts it.
//!
//! A request is admitted only once its cheap read-only checks passed (a request for no
//! attempt or session never takes a place), and takes its running slot before it spends
//! anything a shed request must not cost (a code try, a send): a request is shed before
//! any of that or not at all.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest a request waits for a free slot before it is shed.
pub const MAX_WAIT: Duration = Duration::from_secs(3);
/// The `Retry-After` a shed request is answered with (seconds).
pub const RETRY_AFTER_SECONDS: u64 = 2;

pub struct Argon2Gate {
    slots: usize,
    capacity: usize,
    wait: Duration,
    state: Mutex<GateState>,
    freed: Condvar,
}

#[derive(Default)]
struct GateState {
    /// Requests holding a ticket (running or waiting to run).
    admitted: usize,
    /// Hashes running now.
    running: usize,
}

/// A place in the gate; dropping it gives the place back.
pub struct Ticket<'a> {
    gate: &'a Argon2Gate,
}

impl Argon2Gate {
    /// `slots` hashes at once, `queue` more admitted to wait at most `wait` each.
    pub fn new(slots: usize, queue: usize, wait: Duration) -> Argon2Gate {
        let slots = slots.max(1);
        Argon2Gate { slots, capacity: slots + queue, wait, state: Mutex::new(GateState::default()), freed: Condvar::new() }
    }

    /// One slot per core, and a queue as long again: at most `2 × cores` requests hold a
    /// ticket, so at most `cores × 19 MiB` of Argon2 memory is live.
    pub fn for_this_machine() -> Argon2Gate {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Argon2Gate::new(cores, cores, MAX_WAIT)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ticket, or `None` when the gate is full (shed the request).
    pub fn admit(&self) -> Option<Ticket<'_>> {
        let mut state = self.lock();
        if state.admitted >= self.capacity {
            return None;
        }
        state.admitted += 1;
        Some(Ticket { gate: self })
    }
}

impl<'g> Ticket<'g> {
    /// Waits for a free slot; `None` when none freed up in time (shed the request). The
    /// caller takes its slot *before* it spends anything a shed request must not cost (a
    /// code try, a send), so a request is never shed after that.
    pub fn slot(&self) -> Option<Slot<'g>> {
        let gate = self.gate;
        let deadline = Instant::now() + gate.wait;
        let mut state = gate.lock();
        while state.running >= gate.slots {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            state = gate.freed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
        state.running += 1;
        Some(Slot(gate))
    }

    /// Runs `work` once a slot is free; `None` when none freed up in time (shed the request).
    pub fn run<T>(&self, work: impl FnOnce() -> T) -> Option<T> {
        let _slot = self.slot()?;
        Some(work())
    }
}

/// A running slot; dropping it (also on a panic) gives it back.
pub struct Slot<'g>(&'g Argon2Gate);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.lock().running -= 1;
        self.0.freed.notify_one();
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.gate.lock().admitted -= 1;
    }
}

impl crate::Keyward {
    /// Admits a request that is about to run Argon2 (`op`: what for), or sheds it, counted in
    /// `keyward_argon2_shed_total`.
    pub(crate) fn admit_argon2(&self, op: &'static str) -> Result<Ticket<'_>, crate::ServiceError> {
        self.argon2_gate.admit().ok_or_else(|| self.shed(op))
    }

    fn shed(&self, op: &'static str) -> crate::ServiceError {
        self.metrics.inc(crate::metrics::Family::Argon2Shed, "op", op);
        crate::ServiceError::Busy { retry_after: RETRY_AFTER_SECONDS }
    }

    /// Waits for a running slot of `ticket`, or sheds the request (nothing spent yet).
    pub(crate) fn argon2_slot<'g>(&self, ticket: &Ticket<'g>, op: &'static str) -> Result<Slot<'g>, crate::ServiceError> {
        ticket.slot().ok_or_else(|| self.shed(op))
    }

    /// The Argon2 PHC string of `code`, in a slot already held.
    pub(crate) fn argon2_hash(&self, _slot: &Slot<'_>, code: &str) -> Result<String, crate::ServiceError> {
        use argon2::PasswordHasher;
        self.metrics.inc(crate::metrics::Family::Argon2, "op", "hash");
        self.argon2.hash_password(code.as_bytes()).map(|h| h.to_string()).map_err(|e| crate::ServiceError::Crypto(e.to_string()))
    }

    /// Whether `code` matches the PHC string `hash`, in a slot already held.
    pub(crate) fn argon2_verify(&self, _slot: &Slot<'_>, code: &str, hash: &str) -> bool {
        use argon2::PasswordVerifier;
        self.metrics.inc(crate::metrics::Family::Argon2, "op", "verify");
        self.argon2.verify_password(code.as_bytes(), hash).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn f21_gate_runs_at_most_slots_at_once_and_sheds_past_its_capacity() {
        let gate = Arc::new(Argon2Gate::new(2, 2, Duration::from_secs(5)));
        let tickets: Vec<_> = (0..4).map(|_| gate.admit().expect("within capacity")).collect();
        assert!(gate.admit().is_none(), "a fifth request is shed");
        drop(tickets);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
                std::thread::spawn(move || {
                    let Some(ticket) = gate.admit() else { return false };
                    ticket
                        .run(|| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .is_some()
                })
            })
            .collect();
        let ran = threads.into_iter().map(|t| t.join().unwrap()).filter(|r| *r).count();
        assert!(peak.load(Ordering::SeqCst) <= 2, "at most two at once");
        assert!(ran >= 2, "some ran");
    }

    #[test]
    fn f21_gate_sheds_a_waiter_after_its_wait() {
        let gate = Argon2Gate::new(1, 1, Duration::from_millis(50));
        let first = gate.admit().unwrap();
        let second = gate.admit().unwrap();
        let started = Instant::now();
        let waited = first.run(|| second.run(|| ()));
        assert_eq!(waited, Some(None), "the waiter gave up while the slot was taken");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(second.run(|| 7), Some(7), "and runs once the slot is free");
    }
}
