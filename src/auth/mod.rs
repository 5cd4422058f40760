//! Identity at run time (SPEC §7): Basic credentials against the static
//! users compiled in, bearer JWTs against a secret, static keys or an OIDC
//! issuer's JWKS, and the caller's values for row-level filters.
//!
//! What is decided here never reaches a client beyond "authentication
//! required" or "forbidden"; the reason goes to the log at debug level,
//! without the credential.

pub mod guard;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use hmac::{KeyInit, Mac};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::runtime::{
    Access, AuthDef, AuthKey, BindValue, JwtDef, KeyDef, PasswordDef, ProjectDef, RoleDef, RoleMask,
};

/// Verified credentials remembered at most this many at a time.
const CACHE_CAPACITY: usize = 10_000;
/// Hash cost bounds for hashes read from the environment at start-up: the
/// same as the build applies to hashes in the project
/// (`flapi_codegen::resolve::auth`, a build-only crate the server cannot link).
const ARGON2_MIN_MEMORY_KIB: u64 = 7_168;
const ARGON2_MIN_COST: u64 = 19_456 * 2;
const ARGON2_MAX_MEMORY_KIB: u64 = 262_144;
const ARGON2_MAX_PASSES: u64 = 10;
const ARGON2_MAX_LANES: u64 = 8;
const PBKDF2_ITERATIONS: std::ops::RangeInclusive<u32> = 100_000..=10_000_000;
/// A JWKS or discovery document larger than this is refused.
const MAX_DOCUMENT_BYTES: u64 = 1 << 20;

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Basic,
    Jwt,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Basic => "basic",
            AuthKind::Jwt => "jwt",
        }
    }
}

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub subject: String,
    pub kind: AuthKind,
    /// Roles held, with inherited ones.
    pub roles: RoleMask,
    pub email: Option<String>,
    /// `auth.jwt.context-claims` values, as text.
    pub claims: Vec<(&'static str, String)>,
}

impl Principal {
    /// The identity a session is bound to.
    pub fn identity(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.subject)
    }
}

/// Why credentials were not accepted (for the log, never the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is malformed")]
    Malformed,
    #[error("this authentication scheme is not configured")]
    UnsupportedScheme,
    #[error("unknown user or wrong password")]
    BadCredentials,
    #[error("the token is not valid")]
    InvalidToken,
    /// Too many failed authentications from this address or for this
    /// user: retry after this many seconds (429).
    #[error("too many failed authentications")]
    Throttled(u64),
    /// Every credential verification slot is taken (503).
    #[error("credential verification is saturated")]
    Busy,
}

impl AuthError {
    /// The HTTP status of a refusal for this reason.
    pub fn status(self) -> u16 {
        match self {
            AuthError::Throttled(_) => 429,
            AuthError::Busy => 503,
            _ => 401,
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone)]
pub enum Denial {
    /// No or bad credentials: 401 with a challenge.
    Unauthenticated(Option<AuthError>),
    /// A valid caller without a permitted role: 403.
    Forbidden(Arc<Principal>),
}

#[derive(Debug, thiserror::Error)]
pub enum AuthStartupError {
    #[error("environment variable `{0}` is used by `auth` but not set")]
    MissingEnv(&'static str),
    #[error("user `{0}`: the password hash is not usable ({1})")]
    BadHash(&'static str, &'static str),
    #[error("JWT key {0}: not a usable public key")]
    BadKey(String),
    #[error("`{0}` is not an https URL (plain http is allowed for a loopback host only)")]
    BadUrl(String),
    #[error("the HS256 secret in `{0}` is {1} bytes; at least 32 are required (RFC 7518 §3.2)")]
    WeakSecret(&'static str, usize),
    #[error("environment variable `{0}` holds an empty password")]
    EmptyPassword(&'static str),
}

/// Shortest HS256 secret accepted: the hash output size (RFC 7518 §3.2).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// A setting that may be an environment reference (`${NAME}` or
/// `{{env.NAME}}`), resolved at start-up so the value is not in the binary.
fn setting(
    value: &'static str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, AuthStartupError> {
    let t = value.trim();
    let name = t
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| {
            t.strip_prefix("{{")
                .and_then(|r| r.strip_suffix("}}"))
                .and_then(|r| r.trim().strip_prefix("env."))
        });
    match name {
        Some(name) => env(name).ok_or_else(|| AuthStartupError::MissingEnv(leak(name))),
        None => Ok(value.to_string()),
    }
}

fn leak(name: &str) -> &'static str {
    // Start-up error path only: one small string, once.
    Box::leak(name.to_string().into_boxed_str())
}

enum Verifier {
    Argon2(String),
    Pbkdf2 {
        iterations: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl Verifier {
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Verifier::Argon2(phc) => Argon2::default()
                .verify_password(password, phc.as_str())
                .is_ok(),
            Verifier::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, *iterations, &mut out);
                out.ct_eq(hash).into()
            }
        }
    }
}

/// flAPI's pbkdf2 fields are standard base64 or passlib's "ab64" (`.` for
/// `+`, no padding).
fn lenient_b64(text: &str) -> Option<Vec<u8>> {
    let cleaned = text.trim_end_matches('=').replace('.', "+");
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&cleaned)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))
        })
        .ok()
}

fn parse_hash(text: &str) -> Result<Verifier, &'static str> {
    if text.starts_with("$argon2id$") {
        let hash = argon2::PasswordHash::new(text).map_err(|_| "not a PHC string")?;
        let params = argon2::Params::try_from(&hash).map_err(|_| "bad argon2 parameters")?;
        let (m, t, p) = (
            params.m_cost() as u64,
            params.t_cost() as u64,
            params.p_cost() as u64,
        );
        if m < ARGON2_MIN_MEMORY_KIB
            || m * t < ARGON2_MIN_COST
            || m > ARGON2_MAX_MEMORY_KIB
            || t > ARGON2_MAX_PASSES
            || p == 0
            || p > ARGON2_MAX_LANES
        {
            return Err("argon2id cost parameters out of bounds");
        }
        return Ok(Verifier::Argon2(text.to_string()));
    }
    if let Some(rest) = text.strip_prefix("$pbkdf2-sha256$") {
        let mut parts = rest.split('$');
        let (Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not `$pbkdf2-sha256$<iterations>$<salt>$<hash>`");
        };
        let iterations: u32 = iterations.parse().map_err(|_| "bad iteration count")?;
        if !PBKDF2_ITERATIONS.contains(&iterations) {
            return Err("pbkdf2 iteration count out of bounds");
        }
        let salt = lenient_b64(salt).ok_or("bad salt encoding")?;
        let hash = lenient_b64(hash).ok_or("bad hash encoding")?;
        if hash.len() < 16 {
            return Err("digest too short");
        }
        return Ok(Verifier::Pbkdf2 {
            iterations,
            salt,
            hash,
        });
    }
    Err("neither argon2id nor pbkdf2-sha256")
}

/// An argon2id PHC string for `password` with OWASP's parameters
/// (19 MiB, 2 passes, 1 lane), as `flapi hash-password` prints it.
pub fn hash_password(password: &str) -> Result<String, String> {
    let params = argon2::Params::new(19_456, 2, 1, None).map_err(|e| e.to_string())?;
    let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A credential's place in `Authenticator::in_flight`, removed on drop.
struct InFlight<'a> {
    map: &'a Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    slot: [u8; 32],
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&self.slot);
        }
    }
}

struct CacheEntry {
    principal: Arc<Principal>,
    expires: Instant,
}

/// Checks credentials and access for one compiled project.
pub struct Authenticator {
    def: &'static AuthDef,
    users: HashMap<&'static str, (Arc<Verifier>, RoleMask)>,
    /// Verified against for unknown user names, so they cost the same.
    dummy: Option<Arc<Verifier>>,
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    cache_key: [u8; 32],
    /// One verification at a time per credential: concurrent requests with
    /// the same uncached credentials wait for the first one's result
    /// instead of each paying argon2.
    in_flight: Mutex<HashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>>,
    /// Password hash verifications run so far (known and unknown users).
    hash_checks: std::sync::atomic::AtomicU64,
    /// What failed authentications may cost: see [`guard`].
    guard: guard::Guard,
    jwt: Option<JwtVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("users", &self.users.len())
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

fn grants(mask: RoleMask, roles: &[RoleDef]) -> RoleMask {
    roles
        .iter()
        .filter(|r| mask & r.bit != 0)
        .fold(0, |acc, r| acc | r.grants)
}

impl Authenticator {
    /// Builds the verifiers; `env` reads environment variables (tests pass
    /// their own values instead of changing the process environment).
    pub fn new(
        project: &'static ProjectDef,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthStartupError> {
        let def = &project.auth;
        let mut users = HashMap::new();
        for user in def.users {
            let verifier = match &user.password {
                PasswordDef::Argon2(h) | PasswordDef::Pbkdf2(h) => {
                    parse_hash(h).map_err(|why| AuthStartupError::BadHash(user.username, why))?
                }
                PasswordDef::Env(name) => {
                    let value = env(name).ok_or(AuthStartupError::MissingEnv(name))?;
                    if value.is_empty() {
                        return Err(AuthStartupError::EmptyPassword(name));
                    }
                    if value.starts_with('$') {
                        parse_hash(&value)
                            .map_err(|why| AuthStartupError::BadHash(user.username, why))?
                    } else {
                        tracing::warn!(
                            user = user.username,
                            variable = *name,
                            "a plain password is read from the environment and hashed in memory; store an argon2id hash there instead (`flapi hash-password`)"
                        );
                        let phc = hash_password(&value)
                            .map_err(|_| AuthStartupError::BadHash(user.username, "cannot hash"))?;
                        Verifier::Argon2(phc)
                    }
                }
            };
            users.insert(
                user.username,
                (Arc::new(verifier), grants(user.roles, def.roles)),
            );
        }
        let dummy = users
            .values()
            .find(|(v, _)| matches!(**v, Verifier::Argon2(_)))
            .or_else(|| users.values().next())
            .map(|(v, _)| v.clone());
        let mut cache_key = [0u8; 32];
        // Without randomness the cache key would be guessable; fall back to
        // a key derived from the clock only if the OS refuses.
        if getrandom::fill(&mut cache_key).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            cache_key[..16].copy_from_slice(&nanos.to_le_bytes());
        }
        let jwt = match &def.jwt {
            Some(jwt) => Some(JwtVerifier::new(jwt, def.roles, env)?),
            None => None,
        };
        Ok(Authenticator {
            def,
            users,
            dummy,
            cache: Mutex::new(HashMap::new()),
            cache_key,
            in_flight: Mutex::new(HashMap::new()),
            hash_checks: std::sync::atomic::AtomicU64::new(0),
            guard: guard::Guard::for_machine(),
            jwt,
        })
    }

    pub fn def(&self) -> &'static AuthDef {
        self.def
    }

    /// How many password hashes were verified: once per client thanks to
    /// the cache, and for unknown user names too.
    pub fn hash_checks(&self) -> u64 {
        self.hash_checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The caller of a request from `client`: `Ok(None)` without an
    /// Authorization header. Failures count against the client's address
    /// (and a known user name) before anything costly runs again.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Option<Arc<Principal>>, AuthError> {
        let result = self.authenticate_now(headers, client).await;
        if let Err(AuthError::Throttled(_)) = result {
            self.guard.tarpit().await;
        }
        result
    }

    async fn authenticate_now(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Option<Arc<Principal>>, AuthError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| AuthError::Malformed)?.trim();
        let (scheme, credentials) = value.split_once(' ').ok_or(AuthError::Malformed)?;
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            if self.users.is_empty() {
                return Err(AuthError::UnsupportedScheme);
            }
            self.basic(credentials, client).await.map(Some)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let jwt = self.jwt.as_ref().ok_or(AuthError::UnsupportedScheme)?;
            // A token is checked whatever the address's failures (it is
            // cheap, and never cached): a valid one is always accepted; an
            // invalid one from a throttled address gets the 429.
            match jwt.verify(credentials).await {
                Ok(principal) => Ok(Some(Arc::new(principal))),
                Err(error) => match self.guard.throttled(client, None) {
                    Some(wait) => Err(AuthError::Throttled(wait)),
                    None => {
                        self.guard.failed(client, None);
                        Err(error)
                    }
                },
            }
        } else {
            Err(AuthError::UnsupportedScheme)
        }
    }

    /// A verified caller, or the 401 to send.
    pub async fn require(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Arc<Principal>, Denial> {
        match self.authenticate(headers, client).await {
            Ok(Some(principal)) => Ok(principal),
            Ok(None) => Err(Denial::Unauthenticated(None)),
            Err(e) => Err(Denial::Unauthenticated(Some(e))),
        }
    }

    /// Authenticates only when `access` needs a caller, then decides: the
    /// caller (none for a public item), or the refusal.
    pub async fn check(
        &self,
        access: Access,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Option<Arc<Principal>>, Denial> {
        if access == Access::Public {
            return Ok(None);
        }
        let principal = self.require(headers, client).await?;
        if access.allows(Some(principal.roles)) {
            Ok(Some(principal))
        } else {
            Err(Denial::Forbidden(principal))
        }
    }

    fn cache_slot(&self, credentials: &str) -> [u8; 32] {
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.cache_key)
            .expect("HMAC takes any key length");
        mac.update(credentials.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cached(&self, slot: &[u8; 32]) -> Option<Arc<Principal>> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(slot)?;
        (entry.expires > Instant::now()).then(|| entry.principal.clone())
    }

    async fn basic(
        &self,
        credentials: &str,
        client: Option<IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        let slot = self.cache_slot(credentials);
        if let Some(principal) = self.cached(&slot) {
            return Ok(principal);
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials)
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        let Some((username, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            // Malformed values are throttled (and tarpitted) like wrong ones.
            if let Some(wait) = self.guard.throttled(client, None) {
                return Err(AuthError::Throttled(wait));
            }
            self.guard.failed(client, None);
            return Err(AuthError::Malformed);
        };
        // Only user names that exist have a quota of their own: random
        // names cannot fill the guard's tables.
        let user = self.users.get_key_value(username).map(|(name, _)| *name);
        if let Some(wait) = self.guard.throttled(client, user) {
            return Err(AuthError::Throttled(wait));
        }
        if self.guard.known_bad(&slot) {
            // Counted against the address only: repeating one wrong
            // password costs nothing, so it must not lock the user out.
            self.guard.failed(client, None);
            return Err(AuthError::BadCredentials);
        }
        let turn = self
            .in_flight
            .lock()
            .map(|mut m| m.entry(slot).or_default().clone())
            .unwrap_or_default();
        // The entry goes when this request is done, however it ends.
        let _entry = InFlight {
            map: &self.in_flight,
            slot,
        };
        let _turn = turn.lock().await;
        // The request ahead may have verified these credentials.
        if let Some(principal) = self.cached(&slot) {
            return Ok(principal);
        }
        let result = if self.guard.known_bad(&slot) {
            Err(AuthError::BadCredentials)
        } else {
            self.verify_basic(username, password, slot, client).await
        };
        if matches!(result, Err(AuthError::BadCredentials)) {
            self.guard.remember_bad(slot);
            self.guard.failed(client, user);
        }
        result
    }

    async fn verify_basic(
        &self,
        username: &str,
        password: &str,
        slot: [u8; 32],
        client: Option<IpAddr>,
    ) -> Result<Arc<Principal>, AuthError> {
        let (verifier, roles, known) = match self.users.get_key_value(username) {
            Some((name, (verifier, roles))) => (verifier.clone(), *roles, Some(*name)),
            None => match &self.dummy {
                Some(dummy) => (dummy.clone(), 0, None),
                None => return Err(AuthError::BadCredentials),
            },
        };
        let password = password.to_string();
        self.hash_checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // argon2 takes tens of milliseconds of CPU: off the async workers,
        // under one of the guard's permits.
        let ok = self
            .guard
            .verify_for(client, move || verifier.verify(password.as_bytes()))
            .await
            .map_err(|refused| match refused {
                guard::Refused::Throttled(wait) => AuthError::Throttled(wait),
                guard::Refused::Busy => AuthError::Busy,
            })?;
        let Some(username) = known.filter(|_| ok) else {
            return Err(AuthError::BadCredentials);
        };
        let now = Instant::now();
        let principal = Arc::new(Principal {
            subject: username.to_string(),
            kind: AuthKind::Basic,
            roles,
            email: None,
            claims: Vec::new(),
        });
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAPACITY {
                cache.retain(|_, e| e.expires > now);
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(
                slot,
                CacheEntry {
                    principal: principal.clone(),
                    expires: now + Duration::from_secs(self.def.cache_seconds),
                },
            );
        }
        Ok(principal)
    }

    /// `WWW-Authenticate` values for a 401: one per configured scheme.
    pub fn challenges(&self, error: Option<AuthError>) -> Vec<HeaderValue> {
        let realm = self.def.realm.replace(['"', '\\'], "");
        let mut out = Vec::new();
        if !self.users.is_empty() {
            out.push(format!("Basic realm=\"{realm}\", charset=\"UTF-8\""));
        }
        if self.jwt.is_some() {
            match error {
                Some(AuthError::InvalidToken) => {
                    out.push(format!("Bearer realm=\"{realm}\", error=\"invalid_token\""))
                }
                _ => out.push(format!("Bearer realm=\"{realm}\"")),
            }
        }
        out.into_iter()
            .filter_map(|v| HeaderValue::from_str(&v).ok())
            .collect()
    }

    /// Fills the caller's values into a plan's binds.
    pub fn bind_caller(&self, binds: &mut [BindValue], principal: Option<&Principal>) {
        for bind in binds.iter_mut() {
            if let BindValue::Auth(key) = bind {
                *bind = caller_value(*key, principal, self.def.roles);
            }
        }
    }
}

/// One `auth.*` value; NULL without a caller (matches no row).
pub fn caller_value(key: AuthKey, principal: Option<&Principal>, roles: &[RoleDef]) -> BindValue {
    let Some(p) = principal else {
        return BindValue::Null;
    };
    match key {
        AuthKey::Subject => BindValue::Text(p.subject.clone()),
        AuthKey::Email => p
            .email
            .clone()
            .map(BindValue::Text)
            .unwrap_or(BindValue::Null),
        AuthKey::Roles => BindValue::Text(
            roles
                .iter()
                .filter(|r| p.roles & r.bit != 0)
                .map(|r| r.name)
                .collect::<Vec<_>>()
                .join(","),
        ),
        AuthKey::Kind => BindValue::Text(p.kind.as_str().to_string()),
        AuthKey::Claim(name) => p
            .claims
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| BindValue::Text(v.clone()))
            .unwrap_or(BindValue::Null),
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "HS256" => Some(Algorithm::HS256),
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct JwksState {
    keys: Vec<Key>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

struct Jwks {
    oidc_issuer: Option<String>,
    url: Option<String>,
    state: Mutex<JwksState>,
    /// One fetch at a time; others wait and then use its result.
    fetching: tokio::sync::Mutex<()>,
    cache_for: Duration,
    min_refresh: Duration,
}

struct JwtVerifier {
    def: &'static JwtDef,
    issuer: Option<String>,
    audiences: Vec<String>,
    roles: &'static [RoleDef],
    algorithms: Vec<Algorithm>,
    secret: Option<DecodingKey>,
    static_keys: Vec<Key>,
    jwks: Option<Arc<Jwks>>,
}

/// A URL keys may be fetched from: https, or plain http to a loopback
/// host (a test issuer), decided on the parsed host, never on a prefix
/// (`http://localhost.evil.com` is not loopback).
pub fn allowed_url(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    if !url.username().is_empty() || url.password().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

/// Whether two URLs have the same origin (scheme, host, port).
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a), url::Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

fn fetch_json(agent: &ureq::Agent, url: &str) -> Result<Value, String> {
    if !allowed_url(url) {
        return Err("refusing a URL that is not https (or http to loopback)".into());
    }
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_DOCUMENT_BYTES)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

impl Jwks {
    /// Downloads the key set (discovery first when configured).
    fn download(&self) -> Result<Vec<Key>, String> {
        // No redirects: a redirect could lead to another scheme or origin.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .max_redirects(0)
            .build()
            .into();
        let url = match (&self.url, &self.oidc_issuer) {
            (Some(url), _) => url.clone(),
            (None, Some(issuer)) => {
                let discovery = format!(
                    "{}/.well-known/openid-configuration",
                    issuer.trim_end_matches('/')
                );
                let doc = fetch_json(&agent, &discovery)?;
                let jwks_uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or("the discovery document has no jwks_uri")?;
                // Keys come from the issuer's own origin; an issuer whose
                // keys live elsewhere is configured with `jwks-url`.
                if !same_origin(jwks_uri, issuer) {
                    return Err(format!(
                        "the discovery document's jwks_uri is not on the issuer's origin ({jwks_uri}); set `auth.jwt.jwks-url` to trust it"
                    ));
                }
                jwks_uri.to_string()
            }
            (None, None) => return Ok(Vec::new()),
        };
        let set: JwkSet =
            serde_json::from_value(fetch_json(&agent, &url)?).map_err(|e| e.to_string())?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Algorithm::ES256
                }
                _ => continue,
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.push(Key {
                    kid: jwk.common.key_id.clone(),
                    alg,
                    key,
                });
            }
        }
        Ok(keys)
    }

    /// Keys for a token: cached ones, refreshed when stale or when the
    /// token names a key id the cache lacks (at most once per
    /// `min_refresh`, so unknown ids cannot make us hammer the issuer).
    async fn keys_for(self: &Arc<Self>, kid: Option<&str>) -> Vec<Key> {
        let needs_refresh = |state: &JwksState| {
            let now = Instant::now();
            let stale = state.fetched.is_none_or(|t| now - t > self.cache_for);
            let unknown =
                kid.is_some_and(|k| !state.keys.iter().any(|key| key.kid.as_deref() == Some(k)));
            let may_try = state.attempted.is_none_or(|t| now - t >= self.min_refresh);
            (stale || unknown) && may_try
        };
        let refresh = self
            .state
            .lock()
            .map(|s| needs_refresh(&s))
            .unwrap_or(false);
        if refresh {
            let _guard = self.fetching.lock().await;
            // Another request may have fetched while this one waited.
            let still = self
                .state
                .lock()
                .map(|s| needs_refresh(&s))
                .unwrap_or(false);
            if still {
                if let Ok(mut s) = self.state.lock() {
                    s.attempted = Some(Instant::now());
                }
                let this = self.clone();
                match tokio::task::spawn_blocking(move || this.download()).await {
                    Ok(Ok(keys)) => {
                        if let Ok(mut s) = self.state.lock() {
                            s.keys = keys;
                            s.fetched = Some(Instant::now());
                        }
                    }
                    Ok(Err(e)) => tracing::warn!(error = %e, "fetching the issuer's keys failed"),
                    Err(_) => tracing::warn!("fetching the issuer's keys failed"),
                }
            }
        }
        self.state
            .lock()
            .map(|s| s.keys.clone())
            .unwrap_or_default()
    }
}

impl JwtVerifier {
    fn new(
        def: &'static JwtDef,
        roles: &'static [RoleDef],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthStartupError> {
        let secret = match def.secret_env {
            Some(name) => {
                let value = env(name).ok_or(AuthStartupError::MissingEnv(name))?;
                if value.len() < MIN_HS256_SECRET_BYTES {
                    return Err(AuthStartupError::WeakSecret(name, value.len()));
                }
                Some(DecodingKey::from_secret(value.as_bytes()))
            }
            None => None,
        };
        let mut static_keys = Vec::new();
        for (i, k) in def.keys.iter().enumerate() {
            let label = k
                .kid
                .map(str::to_string)
                .unwrap_or_else(|| format!("#{}", i + 1));
            let pem = match k.source {
                KeyDef::Pem(pem) => pem.to_string(),
                KeyDef::Env(name) => env(name).ok_or(AuthStartupError::MissingEnv(name))?,
            };
            let alg = algorithm(k.alg).ok_or_else(|| AuthStartupError::BadKey(label.clone()))?;
            let key = match alg {
                Algorithm::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
                _ => DecodingKey::from_ec_pem(pem.as_bytes()),
            }
            .map_err(|_| AuthStartupError::BadKey(label))?;
            static_keys.push(Key {
                kid: k.kid.map(str::to_string),
                alg,
                key,
            });
        }
        let url = |v: Option<&'static str>| -> Result<Option<String>, AuthStartupError> {
            match v {
                None => Ok(None),
                Some(v) => {
                    let resolved = setting(v, env)?;
                    if allowed_url(&resolved) {
                        Ok(Some(resolved))
                    } else {
                        Err(AuthStartupError::BadUrl(resolved))
                    }
                }
            }
        };
        let oidc_issuer = url(def.oidc_issuer)?;
        let jwks_url = url(def.jwks_url)?;
        let issuer = def.issuer.map(|i| setting(i, env)).transpose()?;
        let audiences = def
            .audiences
            .iter()
            .map(|a| setting(a, env))
            .collect::<Result<Vec<_>, _>>()?;
        let jwks = (oidc_issuer.is_some() || jwks_url.is_some()).then(|| {
            Arc::new(Jwks {
                oidc_issuer,
                url: jwks_url,
                state: Mutex::new(JwksState::default()),
                fetching: tokio::sync::Mutex::new(()),
                cache_for: Duration::from_secs(def.jwks_cache_seconds),
                min_refresh: Duration::from_secs(def.jwks_min_refresh_seconds),
            })
        });
        Ok(JwtVerifier {
            def,
            issuer,
            audiences,
            roles,
            algorithms: def.algorithms.iter().filter_map(|a| algorithm(a)).collect(),
            secret,
            static_keys,
            jwks,
        })
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        // The algorithm must be one the configuration allows; the token's
        // `alg` only selects among those.
        if !self.algorithms.contains(&header.alg) {
            return Err(AuthError::InvalidToken);
        }
        let kid = header.kid.as_deref();
        let mut candidates: Vec<Key> = Vec::new();
        if header.alg == Algorithm::HS256 {
            if let Some(secret) = &self.secret {
                candidates.push(Key {
                    kid: None,
                    alg: Algorithm::HS256,
                    key: secret.clone(),
                });
            }
        } else {
            let matching =
                |k: &Key| k.alg == header.alg && (kid.is_none() || k.kid.as_deref() == kid);
            candidates.extend(self.static_keys.iter().filter(|k| matching(k)).cloned());
            if candidates.is_empty()
                && let Some(jwks) = &self.jwks
            {
                candidates.extend(jwks.keys_for(kid).await.into_iter().filter(|k| matching(k)));
            }
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.def.leeway_seconds;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if self.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        let claims = candidates
            .iter()
            .find_map(|k| jsonwebtoken::decode::<Value>(token, &k.key, &validation).ok())
            .map(|data| data.claims)
            .ok_or(AuthError::InvalidToken)?;
        self.principal(&claims)
    }

    fn principal(&self, claims: &Value) -> Result<Principal, AuthError> {
        // An email address is an identity only when the issuer says it
        // verified it: anyone can register an unverified address at many
        // IdPs. As the subject it refuses the token; as `auth.email` it is
        // NULL (matches no row).
        let verified = matches!(claims.get("email_verified"), Some(Value::Bool(true)))
            || matches!(claims.get("email_verified"), Some(Value::String(s)) if s == "true");
        let subject_is_email =
            self.def.subject_claim == self.def.email_claim || self.def.subject_claim == "email";
        if subject_is_email && !verified {
            return Err(AuthError::InvalidToken);
        }
        let subject = claim(claims, self.def.subject_claim)
            .and_then(scalar_text)
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::InvalidToken)?;
        let mut mask: RoleMask = 0;
        for name in names(claim(claims, self.def.roles_claim)) {
            if let Some(role) = self.roles.iter().find(|r| r.name == name) {
                mask |= role.bit;
            }
        }
        let groups = names(claim(claims, self.def.groups_claim));
        for (group, roles) in self.def.group_roles {
            if groups.iter().any(|g| g == group) {
                mask |= roles;
            }
        }
        let context = self
            .def
            .context_claims
            .iter()
            .filter_map(|name| claims.get(*name).and_then(scalar_text).map(|v| (*name, v)))
            .collect();
        Ok(Principal {
            subject,
            kind: AuthKind::Jwt,
            roles: grants(mask, self.roles),
            email: claim(claims, self.def.email_claim)
                .and_then(scalar_text)
                .filter(|_| verified),
            claims: context,
        })
    }
}

/// A claim by dotted path (`realm_access.roles`).
fn claim<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(claims, |v, key| v.get(key))
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list claim, or a space/comma separated string (OAuth `scope` style).
fn names(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(scalar_text).collect(),
        Some(Value::String(s)) => s
            .split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passlib_pbkdf2_hash_verifies_in_both_alphabets() {
        // Computed here with the same parameters passlib uses, then written
        // in passlib's ab64 alphabet and in standard base64.
        let salt = b"0123456789abcdef";
        let mut digest = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"s3cret", salt, 100_000, &mut digest);
        let std = base64::engine::general_purpose::STANDARD;
        let ab64 = |b: &[u8]| std.encode(b).trim_end_matches('=').replace('+', ".");
        for (s, d) in [
            (ab64(salt), ab64(&digest)),
            (std.encode(salt), std.encode(digest)),
        ] {
            let verifier = parse_hash(&format!("$pbkdf2-sha256$100000${s}${d}")).expect("parses");
            assert!(verifier.verify(b"s3cret"));
            assert!(!verifier.verify(b"s3cret "));
        }
    }

    #[test]
    fn argon2_hashes_round_trip_and_are_bounded() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let verifier = parse_hash(&phc).expect("parses");
        assert!(verifier.verify(b"correct horse"));
        assert!(!verifier.verify(b"wrong horse"));
        let weak = phc.replace("m=19456,t=2", "m=4096,t=1");
        assert!(parse_hash(&weak).is_err());
    }

    #[test]
    fn key_urls_are_checked_by_parsed_host_and_origin() {
        for (url, ok) in [
            ("https://idp.example.com/realms/x", true),
            ("http://127.0.0.1:9000/jwks", true),
            ("http://localhost:9000", true),
            ("http://[::1]:9000", true),
            ("http://localhost.evil.com", false),
            ("http://127.0.0.1.evil.com", false),
            ("http://idp.example.com", false),
            ("https://user:pw@idp.example.com", false),
            ("file:///etc/passwd", false),
            ("not a url", false),
        ] {
            assert_eq!(allowed_url(url), ok, "{url}");
        }
        assert!(same_origin(
            "https://idp.example.com/x",
            "https://idp.example.com/y/z"
        ));
        assert!(!same_origin(
            "https://idp.example.com.evil.net/x",
            "https://idp.example.com"
        ));
        assert!(!same_origin(
            "https://idp.example.com:8443/x",
            "https://idp.example.com"
        ));
        assert!(!same_origin(
            "http://idp.example.com/x",
            "https://idp.example.com"
        ));
    }

    #[test]
    fn reserved_parameter_names() {
        use crate::runtime::is_reserved_parameter as r;
        for name in [
            "__auth_sub",
            "_auth",
            "auth",
            "AUTH.sub",
            "__AUTH_username",
            "auth.roles",
        ] {
            assert!(r(name), "{name}");
        }
        for name in ["author", "authority", "oauth", "sub", "customer_id"] {
            assert!(!r(name), "{name}");
        }
    }
}
