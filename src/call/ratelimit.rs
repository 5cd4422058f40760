//! Rate limits (SPEC §12): one GCRA limiter (governor) per endpoint, shared
//! by its REST route, MCP tool and resource (a tool with a `rate-limit` of
//! its own has its own limiter), keyed after authentication on the
//! verified principal, on the client address for anonymous callers (flAPI's `rate-limit.key`
//! chooses: `user-or-ip`, `user`, `ip`).
//!
//! The key stores are bounded. Principals and addresses live in separate
//! stores, so a flood of anonymous addresses cannot push a principal's
//! bucket out; an IPv6 caller is keyed by its /64. A new key enters a full
//! store only by replacing a bucket that has refilled completely (nothing
//! is lost by forgetting it); when every bucket in the store is still
//! active, the new caller is refused (429) rather than given a fresh
//! bucket, so neither memory nor burst can be gained by churning keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, MonotonicClock, Reference};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

use crate::call::Face;
use crate::runtime::{EndpointDef, ProjectDef, RateKeyDef, RateLimitDef};

/// Keys each store holds at most, per route or tool.
pub const STORE_CAPACITY: usize = 10_000;

/// Who a bucket belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BucketKey {
    Principal(String),
    Address(IpAddr),
    /// `key: user` puts every anonymous caller in one bucket.
    Anonymous,
}

impl BucketKey {
    /// The bucket of a caller under `key`.
    pub fn of(key: RateKeyDef, principal: Option<&str>, address: Option<IpAddr>) -> BucketKey {
        let address = || BucketKey::Address(network_of(address));
        match (key, principal) {
            (RateKeyDef::Ip, _) => address(),
            (RateKeyDef::User, Some(p)) | (RateKeyDef::UserOrIp, Some(p)) => {
                BucketKey::Principal(p.to_string())
            }
            (RateKeyDef::User, None) => BucketKey::Anonymous,
            (RateKeyDef::UserOrIp, None) => address(),
        }
    }
}

/// An IPv4 address, or an IPv6 /64 (one subscriber's usual allocation).
fn network_of(address: Option<IpAddr>) -> IpAddr {
    match address {
        Some(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
        }
        Some(IpAddr::V6(v6)) => IpAddr::V4(
            v6.to_ipv4_mapped()
                .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        ),
        Some(v4) => v4,
        None => IpAddr::from([0, 0, 0, 0]),
    }
}

/// A governor state store with a fixed capacity: the theoretical arrival
/// time of each key, in nanoseconds since the limiter started.
pub struct BoundedStore {
    map: Mutex<HashMap<BucketKey, Nanos>>,
    capacity: usize,
}

impl BoundedStore {
    fn new(capacity: usize) -> Self {
        BoundedStore {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Whether `key` has (or may get) a bucket at `now`: a full store
    /// first forgets buckets that have refilled completely.
    fn admit(&self, key: &BucketKey, now: Nanos) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < self.capacity || map.contains_key(key) {
            return true;
        }
        // One millisecond of margin: this clock started just before the
        // limiter's, so its `now` runs a little ahead.
        let margin = Nanos::from(Duration::from_millis(1));
        map.retain(|_, tat| *tat + margin > now);
        map.len() < self.capacity
    }

    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The store as the limiter holds it, shared with [`Limit`] for admission.
pub struct SharedStore(Arc<BoundedStore>);

impl StateStore for SharedStore {
    type Key = BucketKey;

    fn measure_and_replace<T, F, E>(&self, key: &BucketKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.0.map.lock().unwrap_or_else(|e| e.into_inner());
        let (outcome, tat) = f(map.get(key).copied())?;
        map.insert(key.clone(), tat);
        Ok(outcome)
    }
}

type Gcra<C> = RateLimiter<BucketKey, SharedStore, C, StateInformationMiddleware>;

/// A limiter and its store.
struct Bucketed<C: Clock> {
    store: Arc<BoundedStore>,
    limiter: Gcra<C>,
}

/// One route's or tool's limit: a limiter for principals and one for
/// addresses, with the same quota.
pub struct Limit<C: Clock = MonotonicClock> {
    def: RateLimitDef,
    start: C::Instant,
    clock: C,
    principals: Bucketed<C>,
    addresses: Bucketed<C>,
}

/// A limiter's answer, with what the `RateLimit` headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub window_secs: u32,
    pub remaining: u32,
    /// Seconds until a call is allowed again (0 when allowed).
    pub retry_after_secs: u64,
}

impl<C: Clock + Clone> Limit<C> {
    pub fn new(def: RateLimitDef, clock: C) -> Self {
        Self::with_capacity(def, clock, STORE_CAPACITY)
    }

    pub fn with_capacity(def: RateLimitDef, clock: C, capacity: usize) -> Self {
        let max = NonZeroU32::new(def.max.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs(u64::from(def.interval_secs.max(1))) / max.get();
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(max))
            .allow_burst(max);
        let start = clock.now();
        let limiter = |clock: &C| {
            let store = Arc::new(BoundedStore::new(capacity));
            Bucketed {
                limiter:
                    RateLimiter::<_, _, _, governor::middleware::NoOpMiddleware<C::Instant>>::new(
                        quota,
                        SharedStore(store.clone()),
                        clock.clone(),
                    )
                    .with_middleware::<StateInformationMiddleware>(),
                store,
            }
        };
        Limit {
            def,
            start,
            principals: limiter(&clock),
            addresses: limiter(&clock),
            clock,
        }
    }

    pub fn check(&self, key: &BucketKey) -> Decision {
        let limiter = match key {
            BucketKey::Principal(_) => &self.principals,
            _ => &self.addresses,
        };
        let now = self.clock.now();
        let mut decision = Decision {
            allowed: false,
            limit: self.def.max,
            window_secs: self.def.interval_secs,
            remaining: 0,
            retry_after_secs: 1,
        };
        if !limiter.store.admit(key, now.duration_since(self.start)) {
            return decision;
        }
        match limiter.limiter.check_key(key) {
            Ok(snapshot) => {
                decision.allowed = true;
                decision.remaining = snapshot.remaining_burst_capacity();
                decision.retry_after_secs = 0;
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(now);
                decision.retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            }
        }
        decision
    }

    /// Keys held (principals, addresses): bounded by the store capacity.
    pub fn keys(&self) -> (usize, usize) {
        (self.principals.store.len(), self.addresses.store.len())
    }
}

/// Every endpoint's limiter, and the limiters of tools with a quota of
/// their own, by endpoint index.
pub struct RateLimits {
    endpoints: Vec<Option<Limit>>,
    tools: Vec<Option<Limit>>,
}

impl RateLimits {
    pub fn new(project: &ProjectDef) -> Self {
        let build = |def: Option<RateLimitDef>| def.map(|d| Limit::new(d, MonotonicClock));
        RateLimits {
            endpoints: project
                .endpoints
                .iter()
                .map(|e| build(e.rate_limit))
                .collect(),
            tools: project
                .endpoints
                .iter()
                .map(|e| build(e.tool_rate_limit))
                .collect(),
        }
    }

    /// The decision for this caller of `endpoint` through `face`; `None`
    /// when it has no limit. One bucket per endpoint, whichever transport
    /// calls it; a tool with its own `rate-limit` counts in its own.
    pub fn check(
        &self,
        project: &ProjectDef,
        endpoint: &EndpointDef,
        face: Face,
        principal: Option<&str>,
        address: Option<IpAddr>,
    ) -> Option<Decision> {
        let index = project
            .endpoints
            .iter()
            .position(|e| std::ptr::eq(e, endpoint))?;
        let own = match face {
            Face::Tool => self.tools.get(index).and_then(Option::as_ref),
            Face::Route | Face::Resource => None,
        };
        let limit = own.or_else(|| self.endpoints.get(index)?.as_ref())?;
        Some(limit.check(&BucketKey::of(limit.def.key, principal, address)))
    }
}

impl Decision {
    /// `RateLimit-Policy` and `RateLimit` (IETF draft
    /// draft-ietf-httpapi-ratelimit-headers), plus `Retry-After` when
    /// refused.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            (
                "ratelimit-policy",
                format!("\"route\";q={};w={}", self.limit, self.window_secs),
            ),
            (
                "ratelimit",
                format!("\"route\";r={};t={}", self.remaining, self.retry_after_secs),
            ),
        ];
        if !self.allowed {
            headers.push(("retry-after", self.retry_after_secs.to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limit(
        max: u32,
        interval_secs: u32,
        capacity: usize,
    ) -> (Limit<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let def = RateLimitDef {
            max,
            interval_secs,
            key: RateKeyDef::UserOrIp,
        };
        (Limit::with_capacity(def, clock.clone(), capacity), clock)
    }

    fn allowed(limit: &Limit<FakeRelativeClock>, key: &BucketKey, n: usize) -> usize {
        (0..n).filter(|_| limit.check(key).allowed).count()
    }

    #[test]
    fn a_burst_of_max_then_an_even_refill() {
        let (limit, clock) = limit(10, 60, 100);
        let key = BucketKey::Principal("alice".into());
        assert_eq!(allowed(&limit, &key, 15), 10);
        let refused = limit.check(&key);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 6, "one call per 6 s");
        clock.advance(Duration::from_secs(6));
        assert_eq!(allowed(&limit, &key, 5), 1);
    }

    #[test]
    fn no_double_burst_at_a_window_edge() {
        // A fixed window would allow 10 just before its edge and 10 more
        // just after it; GCRA allows the burst once, then the refill rate.
        let (limit, clock) = limit(10, 60, 100);
        let key = BucketKey::Principal("alice".into());
        clock.advance(Duration::from_millis(59_900));
        assert_eq!(allowed(&limit, &key, 10), 10);
        clock.advance(Duration::from_millis(200));
        assert_eq!(allowed(&limit, &key, 10), 0, "just past the edge");
        clock.advance(Duration::from_secs(6));
        assert_eq!(allowed(&limit, &key, 10), 1);
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded_and_spares_principals() {
        let (limit, clock) = limit(5, 60, 1000);
        let alice = BucketKey::Principal("alice".into());
        assert_eq!(allowed(&limit, &alice, 3), 3);
        let mut refused = 0;
        for i in 0..50_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            if !limit.check(&BucketKey::Address(ip)).allowed {
                refused += 1;
            }
        }
        let (principals, addresses) = limit.keys();
        assert!(addresses <= 1000, "{addresses} address keys");
        assert_eq!(principals, 1);
        assert_eq!(
            refused, 49_000,
            "new addresses are refused once the store is full of active buckets"
        );
        // Alice's bucket was not forgotten: two calls left, not a fresh five.
        assert_eq!(allowed(&limit, &alice, 5), 2);
        // Once buckets have refilled, new addresses are admitted again.
        clock.advance(Duration::from_secs(61));
        assert!(
            limit
                .check(&BucketKey::Address(IpAddr::from([10, 0, 0, 1])))
                .allowed
        );
        assert!(limit.keys().1 <= 1000);
    }

    #[test]
    fn ipv6_callers_share_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(IpAddr::from([0; 16]));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 16]));
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 16]));
        let key = |ip| BucketKey::of(RateKeyDef::UserOrIp, None, Some(ip));
        assert_eq!(key(a), key(b));
        assert_ne!(key(a), key(c));
        assert_eq!(
            BucketKey::of(RateKeyDef::Ip, Some("alice"), Some(a)),
            key(a),
            "`ip` ignores the principal"
        );
        assert_eq!(
            BucketKey::of(RateKeyDef::User, None, Some(a)),
            BucketKey::Anonymous
        );
    }
}
