//! Identity and RBAC at build time (SPEC §7): roles from `roles.yaml`
//! become bits of a static mask, users' password hashes are checked, JWT
//! settings are resolved, and every `allowed-roles` list becomes a mask
//! the runtime compares with one AND.

use std::path::Path;

use crate::diag::{Diagnostics, Location, did_you_mean};
use crate::load::yaml::Sp;
use crate::load::{RawAuth, RawEndpoint, RawJwt, RawOidc, RawProject, RawRoles, RawUser};
use crate::resolve::model::{
    Access, AuthSettings, JwtKey, JwtSettings, KeySource, Password, Role, RoleMask, User,
};

/// One bit per role in a `u64`.
pub const MAX_ROLES: usize = 64;

/// Argon2id cost bounds. The floor is OWASP's (19 MiB with 2 passes, or an
/// equal memory × passes product); the ceilings keep one verification from
/// becoming a denial of service.
pub const ARGON2_MIN_MEMORY_KIB: u64 = 7_168;
pub const ARGON2_MIN_COST: u64 = 19_456 * 2;
pub const ARGON2_MAX_MEMORY_KIB: u64 = 262_144;
pub const ARGON2_MAX_PASSES: u64 = 10;
pub const ARGON2_MAX_LANES: u64 = 8;
pub const PBKDF2_MIN_ITERATIONS: u64 = 100_000;
pub const PBKDF2_MAX_ITERATIONS: u64 = 10_000_000;

const HASH_HELP: &str = "run `flapi hash-password` and paste the `$argon2id$…` line it prints";
const ALGORITHMS: &[&str] = &["HS256", "RS256", "ES256"];

/// `{{env.NAME}}` (flAPI) or `${NAME}`: the variable's name.
pub fn env_reference(text: &str) -> Option<String> {
    let t = text.trim();
    let inner = t
        .strip_prefix("{{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(|r| r.trim())
        .and_then(|r| r.strip_prefix("env."))
        .or_else(|| t.strip_prefix("${").and_then(|r| r.strip_suffix('}')))?;
    let valid = !inner.is_empty()
        && !inner.starts_with(|c: char| c.is_ascii_digit())
        && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| inner.to_string())
}

fn is_role_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            chars
                .next()
                .map(|f| f.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Declared roles with their inherited grants.
pub fn resolve_roles(raw: &RawRoles, diags: &mut Diagnostics) -> Vec<Role> {
    let mut roles: Vec<Role> = Vec::new();
    for (i, raw_role) in raw.roles.iter().enumerate() {
        let name = &raw_role.name;
        let path = format!("roles.{}", name.value);
        if !is_role_name(&name.value) {
            diags.error(
                &name.loc,
                path,
                format!("`{}` is not a valid role name", name.value),
                Some("start with a letter; use letters, digits, `_`, `-` and `.`".into()),
            );
            continue;
        }
        let variant = camel(&name.value);
        if let Some(other) = roles.iter().find(|r| r.variant == variant) {
            diags.error(
                &name.loc,
                path,
                format!(
                    "role `{}` and role `{}` map to the same Rust name `{variant}`",
                    name.value, other.name
                ),
                Some("rename one of them".into()),
            );
            continue;
        }
        if i >= MAX_ROLES {
            diags.error(
                &name.loc,
                path,
                format!("more than {MAX_ROLES} roles are declared"),
                Some("merge roles; flapi keeps a role set in one 64-bit word".into()),
            );
            break;
        }
        let bit = 1u64 << roles.len();
        roles.push(Role {
            name: name.value.clone(),
            variant,
            description: raw_role.description.as_ref().map(|d| d.value.clone()),
            bit,
            grants: bit,
        });
    }
    // Inheritance: direct parents first, then the closure (a cycle is an
    // error, found as a role that reaches itself).
    let mut direct: Vec<RoleMask> = vec![0; roles.len()];
    for raw_role in &raw.roles {
        let Some(index) = roles.iter().position(|r| r.name == raw_role.name.value) else {
            continue;
        };
        let path = format!("roles.{}.inherits", raw_role.name.value);
        direct[index] = mask_of(&raw_role.inherits, &roles, &path, diags);
    }
    for index in 0..roles.len() {
        let mut grants = 0u64;
        let mut frontier = direct[index];
        while frontier & !grants != 0 {
            let new = frontier & !grants;
            grants |= new;
            frontier = 0;
            for (j, parents) in direct.iter().enumerate() {
                if new & (1 << j) != 0 {
                    frontier |= parents;
                }
            }
        }
        if grants & roles[index].bit != 0 {
            let loc = raw
                .roles
                .iter()
                .find(|r| r.name.value == roles[index].name)
                .map(|r| r.name.loc.clone())
                .unwrap_or_default();
            diags.error(
                &loc,
                format!("roles.{}.inherits", roles[index].name),
                format!("role `{}` inherits from itself", roles[index].name),
                Some("remove the cycle from `inherits`".into()),
            );
        }
        roles[index].grants |= grants;
    }
    roles
}

/// The roles named in a list, as one mask; unknown names are errors.
pub fn mask_of(
    names: &[Sp<String>],
    roles: &[Role],
    path: &str,
    diags: &mut Diagnostics,
) -> RoleMask {
    let mut mask = 0;
    for name in names {
        match roles.iter().find(|r| r.name == name.value) {
            Some(role) => mask |= role.bit,
            None => {
                let help = did_you_mean(&name.value, roles.iter().map(|r| r.name.as_str()))
                    .unwrap_or_else(|| {
                        if roles.is_empty() {
                            "declare it under `roles:` in roles.yaml".to_string()
                        } else {
                            format!(
                                "declared roles: {}; add it to roles.yaml",
                                roles
                                    .iter()
                                    .map(|r| r.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    });
                diags.error(
                    &name.loc,
                    path,
                    format!("unknown role `{}`", name.value),
                    Some(help),
                );
            }
        }
    }
    mask
}

/// A role set as granted: each role with the roles it inherits.
pub fn grants_of(mask: RoleMask, roles: &[Role]) -> RoleMask {
    roles
        .iter()
        .filter(|r| mask & r.bit != 0)
        .fold(0, |acc, r| acc | r.grants)
}

fn param(params: &str, key: &str) -> Option<u64> {
    params
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// Whether a pbkdf2 salt or digest decodes the way the server decodes it
/// (`src/auth/mod.rs::lenient_b64`): URL-safe base64 without padding, as
/// flAPI writes it, standard base64, or passlib's "ab64" (`.` for `+`).
fn is_b64(text: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let unpadded = text.trim_end_matches('=');
    !unpadded.is_empty()
        && (STANDARD_NO_PAD.decode(unpadded.replace('.', "+")).is_ok()
            || URL_SAFE_NO_PAD.decode(unpadded).is_ok())
}

/// Checks a stored password value: argon2id PHC (bounded cost), flAPI's
/// pbkdf2 (warning), an environment reference; anything else fails with
/// the fix.
pub fn classify_password(
    value: &Sp<String>,
    path: &str,
    diags: &mut Diagnostics,
) -> Option<Password> {
    let text = value.value.trim();
    if let Some(name) = env_reference(text) {
        return Some(Password::Env(name));
    }
    let fail = |diags: &mut Diagnostics, message: String| {
        diags.error(&value.loc, path, message, Some(HASH_HELP.into()));
        None
    };
    let fields: Vec<&str> = text.split('$').collect();
    if let Some(rest) = text.strip_prefix("$argon2id$") {
        let parts: Vec<&str> = rest.split('$').collect();
        let (version, params, salt, hash) = match parts.as_slice() {
            [v, p, s, h] => (Some(*v), *p, *s, *h),
            [p, s, h] => (None, *p, *s, *h),
            _ => {
                return fail(
                    diags,
                    "this argon2id hash is not a complete PHC string".into(),
                );
            }
        };
        if version.is_some_and(|v| v != "v=19") {
            return fail(
                diags,
                "this argon2id hash has an unsupported version; flapi verifies v=19".into(),
            );
        }
        let (Some(m), Some(t), Some(p)) =
            (param(params, "m"), param(params, "t"), param(params, "p"))
        else {
            return fail(
                diags,
                "this argon2id hash lacks its m, t and p parameters".into(),
            );
        };
        if !is_b64(salt) || !is_b64(hash) {
            return fail(
                diags,
                "this argon2id hash has a malformed salt or digest".into(),
            );
        }
        if m < ARGON2_MIN_MEMORY_KIB || m * t < ARGON2_MIN_COST {
            return fail(
                diags,
                format!(
                    "argon2id parameters m={m} t={t} are below the minimum cost (m ≥ {ARGON2_MIN_MEMORY_KIB} KiB and m × t ≥ {ARGON2_MIN_COST})"
                ),
            );
        }
        if m > ARGON2_MAX_MEMORY_KIB || t > ARGON2_MAX_PASSES || p == 0 || p > ARGON2_MAX_LANES {
            return fail(
                diags,
                format!(
                    "argon2id parameters m={m} t={t} p={p} are out of bounds (m ≤ {ARGON2_MAX_MEMORY_KIB} KiB, t ≤ {ARGON2_MAX_PASSES}, 1 ≤ p ≤ {ARGON2_MAX_LANES}); each login would cost too much"
                ),
            );
        }
        return Some(Password::Argon2(text.to_string()));
    }
    if text.starts_with("$argon2i$") || text.starts_with("$argon2d$") {
        return fail(
            diags,
            "argon2i and argon2d hashes are not accepted; use argon2id".into(),
        );
    }
    if let Some(rest) = text.strip_prefix("$pbkdf2-sha256$") {
        let parts: Vec<&str> = rest.split('$').collect();
        let [iterations, salt, hash] = parts.as_slice() else {
            return fail(
                diags,
                "this pbkdf2-sha256 hash is not `$pbkdf2-sha256$<iterations>$<salt>$<hash>`".into(),
            );
        };
        let Ok(iterations) = iterations.parse::<u64>() else {
            return fail(
                diags,
                "this pbkdf2-sha256 hash has no iteration count".into(),
            );
        };
        if !is_b64(salt) || !is_b64(hash) {
            return fail(
                diags,
                "this pbkdf2-sha256 hash has a malformed salt or digest".into(),
            );
        }
        if !(PBKDF2_MIN_ITERATIONS..=PBKDF2_MAX_ITERATIONS).contains(&iterations) {
            return fail(
                diags,
                format!(
                    "pbkdf2-sha256 with {iterations} iterations is out of bounds ({PBKDF2_MIN_ITERATIONS} to {PBKDF2_MAX_ITERATIONS})"
                ),
            );
        }
        diags.warning(
            &value.loc,
            path,
            "pbkdf2-sha256 hash (flAPI's format) accepted; argon2id resists GPU cracking far better",
            Some(HASH_HELP.into()),
        );
        return Some(Password::Pbkdf2(text.to_string()));
    }
    if matches!(fields.get(1), Some(&("2a" | "2b" | "2y" | "2x"))) {
        return fail(diags, "bcrypt hashes are not accepted".into());
    }
    if matches!(fields.get(1), Some(&("1" | "5" | "6" | "md5" | "apr1"))) {
        return fail(diags, "crypt(3) hashes are not accepted".into());
    }
    if text.len() == 32 && text.chars().all(|c| c.is_ascii_hexdigit()) {
        return fail(
            diags,
            "this looks like an MD5 digest: unsalted and fast to crack, so it is not accepted"
                .into(),
        );
    }
    fail(
        diags,
        "a plaintext password in the project: it would be readable in the repository and the binary".into(),
    )
}

/// A secret field (`jwt-secret`, `client-secret`): only an environment
/// reference is accepted, never the value.
fn secret_env(value: &Sp<String>, path: &str, diags: &mut Diagnostics) -> Option<String> {
    match env_reference(&value.value) {
        Some(name) => Some(name),
        None => {
            diags.error(
                &value.loc,
                path,
                "a literal secret in the project: it would be readable in the repository and the binary",
                Some("write `'${JWT_SECRET}'` (or `'{{env.JWT_SECRET}}'`) and set the variable where the server runs".into()),
            );
            None
        }
    }
}

/// Everything about identity in a project: roles, users, JWT settings and
/// the switches for REST and MCP.
pub fn resolve_auth(
    dir: &Path,
    project: &RawProject,
    raw_roles: &RawRoles,
    endpoints: &[RawEndpoint],
    files_read: &mut Vec<std::path::PathBuf>,
    diags: &mut Diagnostics,
) -> AuthSettings {
    let roles = resolve_roles(raw_roles, diags);
    let enabled = |a: &Option<RawAuth>| {
        a.as_ref()
            .is_some_and(|a| a.enabled.as_ref().map(|e| e.value).unwrap_or(true))
    };
    let rest = enabled(&project.auth);
    let mcp = rest || enabled(&project.mcp.auth);

    let mut users: Vec<User> = Vec::new();
    let mut add_users = |list: &[RawUser], diags: &mut Diagnostics| {
        for raw in list {
            let Some(username) = &raw.username else {
                diags.error(
                    &raw.loc,
                    raw.path.as_str(),
                    "a user needs a `username`",
                    None,
                );
                continue;
            };
            if username.value.is_empty()
                || username.value.contains(':')
                || env_reference(&username.value).is_some()
            {
                diags.error(
                    &username.loc,
                    format!("{}.username", raw.path),
                    format!("`{}` is not a usable user name", username.value),
                    Some("write the name itself; it may not be empty or contain `:`".into()),
                );
                continue;
            }
            let Some(password) = &raw.password else {
                diags.error(
                    &raw.loc,
                    raw.path.as_str(),
                    "a user needs a `password` hash",
                    Some(HASH_HELP.into()),
                );
                continue;
            };
            let path = format!("{}.password", raw.path);
            let Some(password) = classify_password(password, &path, diags) else {
                continue;
            };
            let mask = mask_of(&raw.roles, &roles, &format!("{}.roles", raw.path), diags);
            if let Some(existing) = users.iter().find(|u| u.username == username.value) {
                if existing.password != password || existing.roles != mask {
                    diags.error(
                        &username.loc,
                        format!("{}.username", raw.path),
                        format!(
                            "user `{}` is declared twice with different settings",
                            username.value
                        ),
                        Some("declare each user once, in roles.yaml".into()),
                    );
                }
                continue;
            }
            users.push(User {
                username: username.value.clone(),
                password,
                roles: mask,
            });
        }
    };
    add_users(&raw_roles.users, diags);
    if let Some(auth) = &project.auth {
        add_users(&auth.users, diags);
    }
    for endpoint in endpoints {
        if let Some(auth) = &endpoint.auth {
            add_users(&auth.users, diags);
        }
    }

    let mut jwt = project
        .auth
        .as_ref()
        .and_then(|a| resolve_jwt(dir, a, &roles, files_read, diags));
    // `mcp.auth.jwt-secret` (flAPI) adds or confirms the HS256 secret.
    if let Some(mcp_auth) = &project.mcp.auth {
        for exemption in &mcp_auth.method_exemptions {
            diags.error(
                &exemption.loc,
                format!("mcp.auth.methods.{}.required", exemption.value),
                "MCP methods cannot be exempted from authentication",
                Some("remove the `methods` entry: every MCP request is authenticated when auth is on".into()),
            );
        }
        merge_bearer(mcp_auth, &mut jwt, &roles, diags);
    }
    // flAPI's endpoint-level `auth: {type: bearer, jwt-secret, jwt-issuer}`:
    // one verifier serves the whole server, so each endpoint's settings
    // add to (or must agree with) the project's.
    for endpoint in endpoints {
        if enabled(&endpoint.auth)
            && let Some(auth) = &endpoint.auth
        {
            merge_bearer(auth, &mut jwt, &roles, diags);
        }
    }
    if let Some(settings) = &jwt {
        require_audience(project, settings, diags);
    }

    let settings = AuthSettings {
        rest,
        mcp,
        realm: project
            .auth
            .as_ref()
            .and_then(|a| a.realm.as_ref())
            .map(|r| r.value.clone())
            .unwrap_or_else(|| "flapi".into()),
        roles,
        users,
        jwt,
        cache_seconds: project
            .auth
            .as_ref()
            .and_then(|a| a.cache_seconds.as_ref())
            .map(|c| {
                if (1..=3600).contains(&c.value) {
                    c.value as u64
                } else {
                    diags.error(
                        &c.loc,
                        "auth.credential-cache-seconds",
                        "must be 1 to 3600",
                        None,
                    );
                    60
                }
            })
            .unwrap_or(60),
    };
    let any_endpoint_auth = endpoints.iter().any(|e| enabled(&e.auth));
    // Declared, even if rejected above: no follow-on error for a project
    // whose only user has a bad hash.
    let declared = !raw_roles.users.is_empty()
        || project.auth.as_ref().is_some_and(|a| {
            !a.users.is_empty() || a.jwt.is_some() || a.oidc.is_some() || a.jwt_secret.is_some()
        })
        || project
            .mcp
            .auth
            .as_ref()
            .is_some_and(|a| a.jwt_secret.is_some())
        || endpoints.iter().any(|e| {
            e.auth
                .as_ref()
                .is_some_and(|a| !a.users.is_empty() || a.jwt_secret.is_some())
        });
    if (settings.rest || settings.mcp || any_endpoint_auth) && !declared {
        let loc = project
            .auth
            .as_ref()
            .or(project.mcp.auth.as_ref())
            .map(|a| a.loc.clone())
            .or_else(|| {
                endpoints
                    .iter()
                    .find_map(|e| e.auth.as_ref().map(|a| a.loc.clone()))
            })
            .unwrap_or_else(|| Location::file_start(&project.file));
        diags.error(
            &loc,
            "auth",
            "authentication is enabled but no users and no JWT settings are declared",
            Some(
                "declare users in roles.yaml, or `auth.jwt` with a secret, keys or an OIDC issuer"
                    .into(),
            ),
        );
    }
    for auth in project
        .auth
        .iter()
        .chain(project.mcp.auth.iter())
        .chain(endpoints.iter().filter_map(|e| e.auth.as_ref()))
    {
        if let Some(kind) = &auth.kind {
            let ok = match kind.value.as_str() {
                "basic" => !settings.users.is_empty(),
                "jwt" | "bearer" | "oidc" => settings.jwt.is_some(),
                other => {
                    diags.error(
                        &kind.loc,
                        format!("{}.type", auth.path),
                        format!("unknown auth type `{other}`"),
                        did_you_mean(other, ["basic", "jwt", "bearer", "oidc"])
                            .or_else(|| Some("use basic, jwt, bearer or oidc".into())),
                    );
                    true
                }
            };
            if !ok {
                diags.error(
                    &kind.loc,
                    format!("{}.type", auth.path),
                    format!("auth type `{}` is named but not configured", kind.value),
                    Some(if kind.value == "basic" {
                        "declare users in roles.yaml".into()
                    } else {
                        "configure `auth.jwt` (or flAPI's `jwt-secret`/`oidc`) in flapi.yaml".into()
                    }),
                );
            }
        }
    }
    settings
}

fn default_jwt(_roles: &[Role]) -> JwtSettings {
    JwtSettings {
        leeway_seconds: 30,
        subject_claim: "sub".into(),
        email_claim: "email".into(),
        roles_claim: "roles".into(),
        groups_claim: "groups".into(),
        jwks_cache_seconds: 3600,
        jwks_min_refresh_seconds: 30,
        ..Default::default()
    }
}

fn bounded(
    value: &Option<Sp<i64>>,
    path: &str,
    range: std::ops::RangeInclusive<i64>,
    diags: &mut Diagnostics,
) -> Option<u64> {
    let v = value.as_ref()?;
    if range.contains(&v.value) {
        Some(v.value as u64)
    } else {
        diags.error(
            &v.loc,
            path,
            format!("{} is out of range", v.value),
            Some(format!("use {} to {}", range.start(), range.end())),
        );
        None
    }
}

fn claim_path(value: &Sp<String>, path: &str, diags: &mut Diagnostics) -> String {
    let ok = !value.value.is_empty()
        && value.value.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '/'))
        });
    if !ok {
        diags.error(
            &value.loc,
            path,
            format!("`{}` is not a claim path", value.value),
            Some("write a claim name, or a dotted path such as `realm_access.roles`".into()),
        );
    }
    value.value.clone()
}

/// https, or plain http to a loopback host, by the parsed host
/// (`http://localhost.evil.com` is not loopback). The server checks the
/// same again at start-up, after environment references are resolved.
fn key_url_allowed(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    let credentials = !url.username().is_empty() || url.password().is_some();
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    !credentials
        && url.host().is_some()
        && (url.scheme() == "https" || (url.scheme() == "http" && loopback))
}

/// flAPI's short bearer keys (`jwt-secret`, `jwt-issuer`, `jwt-audience`)
/// outside `auth` in flapi.yaml (`mcp.auth`, an endpoint's `auth`): they
/// add the HS256 secret, issuer and audience to the one verifier, or must
/// agree with what it already has.
fn merge_bearer(
    auth: &RawAuth,
    jwt: &mut Option<JwtSettings>,
    roles: &[Role],
    diags: &mut Diagnostics,
) {
    let secret_path = format!("{}.jwt-secret", auth.path);
    if let Some(secret) = &auth.jwt_secret
        && let Some(name) = secret_env(secret, &secret_path, diags)
    {
        let settings = jwt.get_or_insert_with(|| default_jwt(roles));
        match &settings.secret_env {
            Some(existing) if *existing != name => diags.error(
                &secret.loc,
                secret_path,
                format!("the JWT secret is already read from `{existing}`; this one is `{name}`"),
                Some("use one secret for the whole server".into()),
            ),
            _ => {
                settings.secret_env = Some(name);
                if !settings.algorithms.iter().any(|a| a == "HS256") {
                    settings.algorithms.push("HS256".into());
                }
            }
        }
    }
    if let Some(issuer) = &auth.jwt_issuer {
        let settings = jwt.get_or_insert_with(|| default_jwt(roles));
        match &settings.issuer {
            Some(existing) if *existing != issuer.value => diags.error(
                &issuer.loc,
                format!("{}.jwt-issuer", auth.path),
                format!(
                    "the JWT issuer is already `{existing}`; this one is `{}`",
                    issuer.value
                ),
                Some("use one issuer for the whole server".into()),
            ),
            _ => settings.issuer = Some(issuer.value.clone()),
        }
    }
    if let (Some(settings), Some(audience)) = (jwt.as_mut(), &auth.jwt_audience)
        && !settings.audiences.contains(&audience.value)
    {
        settings.audiences.push(audience.value.clone());
    }
}

/// Bearer tokens are accepted only for this API's audience: without one,
/// a token the same issuer minted for any other application would do.
/// `jwt.allow-any-audience: true` is the explicit opt-out, warned.
fn require_audience(project: &RawProject, settings: &JwtSettings, diags: &mut Diagnostics) {
    let auth = project.auth.as_ref();
    let opt_out = auth
        .and_then(|a| a.jwt.as_ref())
        .and_then(|j| j.allow_any_audience.as_ref())
        .filter(|o| o.value);
    match opt_out {
        Some(opt_out) if settings.audiences.is_empty() => diags.warning(
            &opt_out.loc,
            "auth.jwt.allow-any-audience",
            "tokens are accepted whatever their audience: a token the same issuer minted for any other application is accepted here",
            Some("set `auth.jwt.audience` to this API's client id or audience".into()),
        ),
        Some(opt_out) => diags.error(
            &opt_out.loc,
            "auth.jwt.allow-any-audience",
            "`allow-any-audience` contradicts the audience that is set",
            Some("remove `allow-any-audience`".into()),
        ),
        None if settings.audiences.is_empty() => {
            let mcp = project.mcp.auth.as_ref();
            let at = auth
                .and_then(|a| a.jwt.as_ref().map(|j| j.loc.clone()))
                .or_else(|| auth.and_then(|a| a.oidc.as_ref().map(|o| o.loc.clone())))
                .or_else(|| auth.and_then(|a| a.jwt_secret.as_ref().map(|s| s.loc.clone())))
                .or_else(|| mcp.and_then(|a| a.jwt_secret.as_ref().map(|s| s.loc.clone())))
                .or_else(|| auth.map(|a| a.loc.clone()))
                .unwrap_or_else(|| Location::file_start(&project.file));
            diags.error(
                &at,
                "auth.jwt.audience",
                "bearer tokens need an audience: without one, a token the same issuer minted for any other application is accepted",
                Some("set `jwt.audience` (or `jwt-audience`, or `oidc.client-id`) to this API's audience, or opt out explicitly with `jwt.allow-any-audience: true`".into()),
            );
        }
        None => {}
    }
}

fn resolve_jwt(
    dir: &Path,
    auth: &RawAuth,
    roles: &[Role],
    files_read: &mut Vec<std::path::PathBuf>,
    diags: &mut Diagnostics,
) -> Option<JwtSettings> {
    if auth.jwt.is_none() && auth.oidc.is_none() && auth.jwt_secret.is_none() {
        return None;
    }
    let mut s = default_jwt(roles);
    let empty = RawJwt::default();
    let j = auth.jwt.as_ref().unwrap_or(&empty);
    let empty_oidc = RawOidc::default();
    let o = auth.oidc.as_ref().unwrap_or(&empty_oidc);

    let secret = match (&auth.jwt_secret, &j.secret) {
        (Some(a), Some(_)) => {
            diags.error(
                &a.loc,
                "auth.jwt-secret",
                "`jwt-secret` and `jwt.secret` are both set",
                Some("keep one".into()),
            );
            None
        }
        (Some(a), None) => Some((a, "auth.jwt-secret")),
        (None, Some(b)) => Some((b, "auth.jwt.secret")),
        (None, None) => None,
    };
    s.secret_env = secret.and_then(|(v, path)| secret_env(v, path, diags));
    let secret = secret.map(|(v, _)| v);
    if let Some(client_secret) = &o.client_secret {
        // Not used to validate tokens; still never a literal.
        let _ = secret_env(client_secret, "auth.oidc.client-secret", diags);
    }
    s.issuer = j
        .issuer
        .as_ref()
        .or(auth.jwt_issuer.as_ref())
        .or(o.issuer_url.as_ref())
        .map(|i| i.value.clone());
    s.oidc_issuer = j
        .oidc_issuer
        .as_ref()
        .or(o.issuer_url.as_ref())
        .map(|i| i.value.clone());
    s.jwks_url = j.jwks_url.as_ref().map(|u| u.value.clone());
    for url in [
        j.oidc_issuer.as_ref(),
        o.issuer_url.as_ref(),
        j.jwks_url.as_ref(),
    ]
    .into_iter()
    .flatten()
    .filter(|u| env_reference(&u.value).is_none())
    {
        if !key_url_allowed(&url.value) {
            diags.error(
                &url.loc,
                "auth.jwt",
                format!("`{}` is not an https URL", url.value),
                Some(
                    "keys must come over TLS; plain http is allowed for loopback test issuers only"
                        .into(),
                ),
            );
        }
    }
    if s.oidc_issuer.is_some()
        && s.issuer.as_deref() != s.oidc_issuer.as_deref()
        && j.issuer.is_none()
    {
        s.issuer = s.oidc_issuer.clone();
    }
    s.audiences = if !j.audience.is_empty() {
        j.audience.iter().map(|a| a.value.clone()).collect()
    } else if let Some(audience) = &auth.jwt_audience {
        vec![audience.value.clone()]
    } else if !o.allowed_audiences.is_empty() {
        o.allowed_audiences
            .iter()
            .map(|a| a.value.clone())
            .collect()
    } else {
        o.client_id.iter().map(|c| c.value.clone()).collect()
    };
    if let Some(v) = &o.verify_expiration
        && !v.value
    {
        diags.error(
            &v.loc,
            "auth.oidc.verify-expiration",
            "expiry is always verified",
            Some("remove `verify-expiration: false`".into()),
        );
    }
    s.leeway_seconds = bounded(&j.leeway_seconds, "auth.jwt.leeway-seconds", 0..=300, diags)
        .or_else(|| {
            bounded(
                &o.clock_skew_seconds,
                "auth.oidc.clock-skew-seconds",
                0..=300,
                diags,
            )
        })
        .unwrap_or(30);
    if let Some(c) = j.subject_claim.as_ref().or(o.username_claim.as_ref()) {
        s.subject_claim = claim_path(c, "auth.jwt.subject-claim", diags);
    }
    if let Some(c) = j.email_claim.as_ref().or(o.email_claim.as_ref()) {
        s.email_claim = claim_path(c, "auth.jwt.email-claim", diags);
    }
    if let Some(c) = j
        .roles_claim
        .as_ref()
        .or(o.role_claim_path.as_ref())
        .or(o.roles_claim.as_ref())
    {
        s.roles_claim = claim_path(c, "auth.jwt.roles-claim", diags);
    }
    if let Some(c) = j.groups_claim.as_ref().or(o.groups_claim.as_ref()) {
        s.groups_claim = claim_path(c, "auth.jwt.groups-claim", diags);
    }
    for (group, names) in &j.group_roles {
        let mask = mask_of(
            names,
            roles,
            &format!("auth.jwt.group-roles.{}", group.value),
            diags,
        );
        s.group_roles.push((group.value.clone(), mask));
    }
    for claim in &j.context_claims {
        if !claim
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || claim.value.is_empty()
        {
            diags.error(
                &claim.loc,
                "auth.jwt.context-claims",
                format!("`{}` cannot be a template name", claim.value),
                Some("context claims are top-level claim names of letters, digits and `_`".into()),
            );
            continue;
        }
        s.context_claims.push(claim.value.clone());
    }
    if let Some(seconds) = bounded(
        &j.jwks_cache_seconds,
        "auth.jwt.jwks-cache-seconds",
        60..=86_400,
        diags,
    ) {
        s.jwks_cache_seconds = seconds;
    } else if let Some(hours) = bounded(
        &o.jwks_cache_hours,
        "auth.oidc.jwks-cache-hours",
        1..=24,
        diags,
    ) {
        s.jwks_cache_seconds = hours * 3600;
    }
    if let Some(seconds) = bounded(
        &j.jwks_min_refresh_seconds,
        "auth.jwt.jwks-min-refresh-seconds",
        0..=3600,
        diags,
    ) {
        s.jwks_min_refresh_seconds = seconds;
    }
    for key in &j.keys {
        let alg = match &key.alg {
            Some(a) if a.value == "RS256" || a.value == "ES256" => a.value.clone(),
            Some(a) => {
                diags.error(
                    &a.loc,
                    format!("{}.alg", key.path),
                    format!("`{}` is not a public-key algorithm flapi accepts", a.value),
                    Some("use RS256 or ES256".into()),
                );
                continue;
            }
            None => {
                diags.error(
                    &key.loc,
                    key.path.as_str(),
                    "a key needs `alg` (RS256 or ES256)",
                    None,
                );
                continue;
            }
        };
        let source = match (&key.pem_file, &key.pem_env) {
            (Some(file), None) => {
                let Some(path) = crate::load::paths::inside(
                    dir,
                    dir,
                    file,
                    &format!("{}.pem-file", key.path),
                    diags,
                ) else {
                    continue;
                };
                match std::fs::read_to_string(&path) {
                    Ok(pem) if pem.contains("-----BEGIN PUBLIC KEY-----") => {
                        files_read.push(path);
                        KeySource::Pem(pem)
                    }
                    Ok(pem) if pem.contains("PRIVATE KEY") => {
                        diags.error(
                            &file.loc,
                            format!("{}.pem-file", key.path),
                            "this file holds a private key",
                            Some("give the public key only (`-----BEGIN PUBLIC KEY-----`)".into()),
                        );
                        continue;
                    }
                    Ok(_) => {
                        diags.error(
                            &file.loc,
                            format!("{}.pem-file", key.path),
                            "this file is not a PEM public key",
                            Some("expected `-----BEGIN PUBLIC KEY-----`".into()),
                        );
                        continue;
                    }
                    Err(_) => {
                        diags.error(
                            &file.loc,
                            format!("{}.pem-file", key.path),
                            format!("key file `{}` does not exist", file.value),
                            Some("the path is relative to the project folder".into()),
                        );
                        continue;
                    }
                }
            }
            (None, Some(env)) => match env_reference(&format!("${{{}}}", env.value)) {
                Some(name) => KeySource::Env(name),
                None => {
                    diags.error(
                        &env.loc,
                        format!("{}.pem-env", key.path),
                        "not an environment variable name",
                        None,
                    );
                    continue;
                }
            },
            _ => {
                diags.error(
                    &key.loc,
                    key.path.as_str(),
                    "a key needs exactly one of `pem-file` and `pem-env`",
                    None,
                );
                continue;
            }
        };
        s.keys.push(JwtKey {
            kid: key.kid.as_ref().map(|k| k.value.clone()),
            alg,
            source,
        });
    }
    // Allowed algorithms come from config, never from the token.
    s.algorithms = if j.algorithms.is_empty() {
        let mut algs = Vec::new();
        if s.secret_env.is_some() {
            algs.push("HS256".to_string());
        }
        if s.oidc_issuer.is_some() || s.jwks_url.is_some() {
            algs.extend(["RS256".to_string(), "ES256".to_string()]);
        }
        for key in &s.keys {
            if !algs.contains(&key.alg) {
                algs.push(key.alg.clone());
            }
        }
        algs
    } else {
        let mut algs = Vec::new();
        for a in &j.algorithms {
            if !ALGORITHMS.contains(&a.value.as_str()) {
                diags.error(
                    &a.loc,
                    "auth.jwt.algorithms",
                    format!("algorithm `{}` is not accepted", a.value),
                    did_you_mean(&a.value, ALGORITHMS.iter().copied())
                        .or_else(|| Some("use HS256, RS256 or ES256".into())),
                );
            } else if a.value == "HS256" && s.secret_env.is_none() {
                diags.error(
                    &a.loc,
                    "auth.jwt.algorithms",
                    "HS256 is allowed but no secret is configured",
                    Some("set `auth.jwt.secret: '${JWT_SECRET}'`".into()),
                );
            } else {
                algs.push(a.value.clone());
            }
        }
        algs
    };
    let has_key_source =
        secret.is_some() || !j.keys.is_empty() || s.oidc_issuer.is_some() || s.jwks_url.is_some();
    if !has_key_source {
        diags.error(
            &j.loc.clone(),
            "auth.jwt",
            "JWT is configured without a way to verify signatures",
            Some("add `secret`, `keys`, `oidc-issuer` or `jwks-url`".into()),
        );
    }
    Some(s)
}

/// The access rule of an item: public when authentication is off for it,
/// else the mask of its roles (no roles: denied to everyone, with a warning).
pub fn access(
    auth_on: bool,
    lists: &[Option<&Vec<Sp<String>>>],
    roles: &[Role],
    item: &str,
    warn_at: &Location,
    path: &str,
    diags: &mut Diagnostics,
) -> Access {
    // Role names are checked whether or not authentication is on.
    let mask = lists
        .iter()
        .flatten()
        .next()
        .map(|names| mask_of(names, roles, path, diags));
    if !auth_on {
        return Access::Public;
    }
    match mask {
        Some(mask) => Access::Roles(mask),
        None => {
            diags.warning(
                warn_at,
                path,
                format!("{item} has no `allowed-roles`: with authentication on, nobody may use it"),
                Some("add `allowed-roles: [role, ...]`".into()),
            );
            Access::Roles(0)
        }
    }
}
