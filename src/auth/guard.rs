//! What a caller without valid credentials may cost (issue 16): a wrong
//! Basic password costs one argon2 verification (19 MiB, tens of
//! milliseconds of CPU), so before any verification runs:
//!
//! - failed authentications are limited per client address (an IPv6
//!   client by its /64) and per known user name, for every scheme (bearer
//!   tokens too). Past the limit the caller gets 429 with `Retry-After`
//!   and nothing is verified;
//! - credentials that failed recently are answered from a negative cache,
//!   keyed by an HMAC of the credentials under a key drawn at start-up, so
//!   the same wrong password is verified once;
//! - at most [`VERIFYING_PER_ADDRESS`] verifications run for one address
//!   at a time (beyond: 429), so a burst cannot slip past the failure
//!   quota before its first failures are counted;
//! - verifications that still run take one of a few permits (half the
//!   cores, at least one) and run on that many dedicated threads (so the
//!   19 MiB an argon2 verification allocates is reused, not spread over
//!   the blocking pool's threads and their allocator arenas), and queries
//!   of authenticated and public callers keep the rest of the machine; a
//!   short queue waits for a permit, and beyond it the caller gets 503
//!   with `Retry-After: 1`.
//!
//! A throttled caller's 429 is held back for [`TARPIT`] (while fewer than
//! [`MAX_TARPITTED`] are held), so a flood from one address runs at one
//! request per connection per second instead of as fast as the server can
//! refuse, and the CPU stays with the callers who authenticated.
//!
//! Credentials that verified are served from the positive cache before any
//! of this, so a flood of wrong credentials from the same address never
//! locks out clients that are already signed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use governor::clock::MonotonicClock;

use crate::call::ratelimit::{BucketKey, Limit};
use crate::runtime::{RateKeyDef, RateLimitDef};

/// Failed authentications allowed per client address in a burst, then
/// one more every `FAILURE_WINDOW_SECS / FAILURES_PER_ADDRESS` seconds.
pub const FAILURES_PER_ADDRESS: u32 = 20;
/// The same for one known user name, from any address.
pub const FAILURES_PER_USER: u32 = 20;
pub const FAILURE_WINDOW_SECS: u32 = 60;
/// One failure's worth of quota comes back this often.
const REFILL: Duration = Duration::from_secs((FAILURE_WINDOW_SECS / FAILURES_PER_ADDRESS) as u64);
/// How long a throttled caller waits for its 429.
pub const TARPIT: Duration = Duration::from_secs(1);
/// Refusals held back at once, at most; beyond, they are answered at once.
pub const MAX_TARPITTED: usize = 4096;
/// Verifications running at once for one client address, at most.
pub const VERIFYING_PER_ADDRESS: usize = 2;
/// How long a failed credential is answered from the negative cache.
const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// Entries in the negative cache and in the list of blocked keys, at most.
const CAPACITY: usize = 10_000;

/// Why the guard refused before verifying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many failures from this address or for this user: retry after
    /// this many seconds.
    Throttled(u64),
    /// Every verification permit is taken and the queue is full.
    Busy,
}

type Job = Box<dyn FnOnce() + Send>;

pub struct Guard {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// The verification threads' queue.
    workers: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Verifications running or queued, per address.
    verifying: std::sync::Arc<Mutex<HashMap<BucketKey, usize>>>,
    /// Throttled refusals being held back now.
    tarpitted: AtomicUsize,
    permit_count: usize,
    waiting: AtomicUsize,
    queue: usize,
    by_address: Limit,
    by_user: Limit,
    /// Keys over their failure quota, until the instant they may try again.
    blocked: Mutex<HashMap<BucketKey, Instant>>,
    negative: Mutex<HashMap<[u8; 32], Instant>>,
}

fn quota(max: u32, key: RateKeyDef) -> RateLimitDef {
    RateLimitDef {
        max,
        interval_secs: FAILURE_WINDOW_SECS,
        key,
    }
}

impl Guard {
    /// Permits sized to the machine: half its cores, at least one.
    pub fn for_machine() -> Guard {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Guard::new((cores / 2).max(1))
    }

    pub fn new(permits: usize) -> Guard {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = std::sync::Arc::new(Mutex::new(receiver));
        for i in 0..permits {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("flapi-verify-{i}"))
                .spawn(move || {
                    loop {
                        let job = match receiver.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "a credential verification thread did not start");
            }
        }
        Guard {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(permits)),
            workers: Mutex::new(sender),
            verifying: std::sync::Arc::new(Mutex::new(HashMap::new())),
            tarpitted: AtomicUsize::new(0),
            permit_count: permits,
            waiting: AtomicUsize::new(0),
            queue: permits * 4,
            by_address: Limit::new(quota(FAILURES_PER_ADDRESS, RateKeyDef::Ip), MonotonicClock),
            by_user: Limit::new(quota(FAILURES_PER_USER, RateKeyDef::User), MonotonicClock),
            blocked: Mutex::new(HashMap::new()),
            negative: Mutex::new(HashMap::new()),
        }
    }

    /// Verification permits (concurrent hash verifications at most).
    pub fn permits(&self) -> usize {
        self.permit_count
    }

    fn keys(address: Option<IpAddr>, user: Option<&str>) -> impl Iterator<Item = BucketKey> {
        let address = BucketKey::of(RateKeyDef::Ip, None, address);
        std::iter::once(address).chain(user.map(|u| BucketKey::Principal(u.to_string())))
    }

    /// Seconds to wait when this address or user is over its failure
    /// quota; `None` when it may try. An attempt while blocked keeps the
    /// block for another refill interval: a caller that keeps trying stays
    /// blocked, one that waits gets its next try.
    pub fn throttled(&self, address: Option<IpAddr>, user: Option<&str>) -> Option<u64> {
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for key in Self::keys(address, user) {
            if let Some(until) = blocked.get_mut(&key)
                && *until > now
            {
                *until = (*until).max(now + REFILL);
                wait = wait.max(Some((*until - now).as_secs().max(1)));
            }
        }
        wait
    }

    /// Counts one failed authentication against the address and the user.
    pub fn failed(&self, address: Option<IpAddr>, user: Option<&str>) {
        let now = Instant::now();
        for key in Self::keys(address, user) {
            let limit = match key {
                BucketKey::Principal(_) => &self.by_user,
                _ => &self.by_address,
            };
            let decision = limit.check(&key);
            if decision.allowed {
                continue;
            }
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            if blocked.len() >= CAPACITY {
                blocked.retain(|_, until| *until > now);
            }
            if blocked.len() < CAPACITY || blocked.contains_key(&key) {
                let wait = Duration::from_secs(decision.retry_after_secs).max(REFILL);
                blocked.insert(key, now + wait);
            }
        }
    }

    /// Holds a throttled caller's refusal back for [`TARPIT`], unless
    /// [`MAX_TARPITTED`] are held already.
    pub async fn tarpit(&self) {
        // Counted down on drop: a client that disconnects while held does
        // not leak its place.
        let held = Count::up(&self.tarpitted);
        if held.before < MAX_TARPITTED {
            tokio::time::sleep(TARPIT).await;
        }
    }

    /// Whether these credentials (by their keyed hash) failed recently.
    pub fn known_bad(&self, slot: &[u8; 32]) -> bool {
        let negative = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        negative
            .get(slot)
            .is_some_and(|until| *until > Instant::now())
    }

    pub fn remember_bad(&self, slot: [u8; 32]) {
        let now = Instant::now();
        let mut negative = self.negative.lock().unwrap_or_else(|e| e.into_inner());
        if negative.len() >= CAPACITY {
            negative.retain(|_, until| *until > now);
            if negative.len() >= CAPACITY {
                negative.clear();
            }
        }
        negative.insert(slot, now + NEGATIVE_TTL);
    }

    /// Runs a verification for `address` on a verification thread, or
    /// refuses: 429 when the address has [`VERIFYING_PER_ADDRESS`] running,
    /// 503 when every permit and the queue are taken. What is counted is
    /// counted down when the verification ends, even when the request
    /// that asked for it has gone (a client that disconnected).
    pub async fn verify_for<T: Send + 'static>(
        &self,
        address: Option<IpAddr>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let key = BucketKey::of(RateKeyDef::Ip, None, address);
        let running = {
            let mut verifying = self.verifying.lock().unwrap_or_else(|e| e.into_inner());
            let running = verifying.entry(key.clone()).or_insert(0);
            if *running >= VERIFYING_PER_ADDRESS {
                return Err(Refused::Throttled(1));
            }
            *running += 1;
            Running {
                map: self.verifying.clone(),
                key,
            }
        };
        self.run(work, running).await
    }

    /// Runs a verification on a verification thread under a permit, or
    /// refuses when the permits and the queue are taken.
    pub async fn verify<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        self.run(work, ()).await
    }

    /// The permit and `hold` stay with the job until it has run.
    async fn run<T: Send + 'static, H: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        hold: H,
    ) -> Result<T, Refused> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let waiting = Count::up(&self.waiting);
                if waiting.before >= self.queue {
                    return Err(Refused::Busy);
                }
                let permit = self.permits.clone().acquire_owned().await;
                drop(waiting);
                permit.map_err(|_| Refused::Busy)?
            }
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = work();
            // Released before the caller is woken, so what it counted is
            // free again when its answer arrives.
            drop(permit);
            drop(hold);
            let _ = done.send(out);
        });
        let sent = self
            .workers
            .lock()
            .map(|w| w.send(job).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(Refused::Busy);
        }
        result.await.map_err(|_| Refused::Busy)
    }
}

/// One more on a counter, one less when dropped.
struct Count<'a> {
    counter: &'a AtomicUsize,
    before: usize,
}

impl<'a> Count<'a> {
    fn up(counter: &'a AtomicUsize) -> Self {
        let before = counter.fetch_add(1, Ordering::SeqCst);
        Count { counter, before }
    }
}

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A verification running for an address; counted down when dropped.
struct Running {
    map: std::sync::Arc<Mutex<HashMap<BucketKey, usize>>>,
    key: BucketKey,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = map.get_mut(&self.key) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_the_address_and_the_user_but_not_others() {
        let guard = Guard::new(1);
        let attacker = Some(IpAddr::from([10, 0, 0, 9]));
        for _ in 0..FAILURES_PER_ADDRESS {
            assert_eq!(guard.throttled(attacker, None), None);
            guard.failed(attacker, None);
        }
        // The quota is spent: the next failure blocks the address.
        guard.failed(attacker, None);
        assert!(guard.throttled(attacker, None).is_some_and(|s| s >= 1));
        assert_eq!(
            guard.throttled(Some(IpAddr::from([10, 0, 0, 10])), None),
            None
        );
        // An IPv6 client is one /64.
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 1, 2, 0, 0, 0, last]));
        for _ in 0..=FAILURES_PER_ADDRESS {
            guard.failed(v6(1), None);
        }
        assert!(guard.throttled(v6(0xffff), None).is_some());
        // A user name from many addresses.
        for i in 0..=FAILURES_PER_USER {
            guard.failed(Some(IpAddr::from([192, 0, 2, i as u8])), Some("alice"));
        }
        assert!(
            guard
                .throttled(Some(IpAddr::from([198, 51, 100, 1])), Some("alice"))
                .is_some()
        );
        assert_eq!(
            guard.throttled(Some(IpAddr::from([198, 51, 100, 1])), Some("bob")),
            None
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_verification_whose_caller_went_away_is_still_counted_down() {
        let guard = std::sync::Arc::new(Guard::new(1));
        let address = Some(IpAddr::from([10, 9, 8, 7]));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let request = {
            let guard = guard.clone();
            tokio::spawn(async move {
                guard
                    .verify_for(address, move || {
                        let _ = started.send(());
                        let _ = hold.recv();
                    })
                    .await
            })
        };
        running.await.expect("the verification runs");
        // The client goes away: its request future is dropped.
        request.abort();
        let _ = request.await;
        assert_eq!(guard.verifying.lock().map(|m| m.len()).unwrap_or(9), 1);
        release.send(()).expect("release");
        // Once the job ends, its address is free again.
        for _ in 0..VERIFYING_PER_ADDRESS {
            assert_eq!(guard.verify_for(address, || ()).await, Ok(()));
        }
        assert!(
            guard
                .verifying
                .lock()
                .map(|m| m.is_empty())
                .unwrap_or(false)
        );
        // A tarpit left early leaks nothing either.
        let tarpitted = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.tarpit().await })
        };
        while guard.tarpitted.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        tarpitted.abort();
        let _ = tarpitted.await;
        assert_eq!(guard.tarpitted.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_negative_cache_remembers_failed_credentials() {
        let guard = Guard::new(1);
        assert!(!guard.known_bad(&[1; 32]));
        guard.remember_bad([1; 32]);
        assert!(guard.known_bad(&[1; 32]));
        assert!(!guard.known_bad(&[2; 32]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifications_beyond_the_permits_and_queue_are_refused() {
        let guard = std::sync::Arc::new(Guard::new(1));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = std::sync::Arc::new(Mutex::new(hold));
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let guard = guard.clone();
            let hold = hold.clone();
            tokio::spawn(async move {
                guard
                    .verify(move || {
                        let _ = started.send(());
                        let _ = hold.lock().map(|h| h.recv());
                    })
                    .await
            })
        };
        running.await.expect("the first verification runs");
        // The permit is held: four more may queue, the sixth is refused.
        let mut queued = Vec::new();
        for _ in 0..guard.queue {
            let guard = guard.clone();
            queued.push(tokio::spawn(async move { guard.verify(|| ()).await }));
        }
        while guard.waiting.load(Ordering::SeqCst) < guard.queue {
            tokio::task::yield_now().await;
        }
        assert_eq!(guard.verify(|| ()).await, Err(Refused::Busy));
        release.send(()).expect("release");
        assert_eq!(first.await.expect("task"), Ok(()));
        for task in queued {
            assert_eq!(task.await.expect("task"), Ok(()));
        }
    }
}
