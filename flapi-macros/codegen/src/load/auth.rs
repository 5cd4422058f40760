//! `auth:` (in flapi.yaml, `mcp.auth:` and endpoint files), and the roles
//! and users of roles.yaml, as written.

use crate::diag::{Diagnostics, Location};
use crate::load::yaml::{
    self, Kind, MapReader, Node, Sp, expect_bool, expect_int, expect_scalar_text, expect_seq,
    expect_str, expect_str_list, opt,
};

/// Where an `auth:` block sits: the keys allowed differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScope {
    /// `auth:` in flapi.yaml.
    Project,
    /// `mcp.auth:` in flapi.yaml.
    Mcp,
    /// `auth:` in an endpoint file (flAPI's per-endpoint form).
    Endpoint,
}

/// An `auth:` block, in any of its three places.
#[derive(Debug, Default)]
pub struct RawAuth {
    pub loc: Location,
    pub path: String,
    pub enabled: Option<Sp<bool>>,
    pub kind: Option<Sp<String>>,
    pub realm: Option<Sp<String>>,
    pub users: Vec<RawUser>,
    /// flAPI's per-endpoint `roles`: who may call the endpoint.
    pub roles: Option<Vec<Sp<String>>>,
    /// flAPI's `jwt-secret` / `jwt-issuer` shorthands.
    pub jwt_secret: Option<Sp<String>>,
    pub jwt_issuer: Option<Sp<String>>,
    /// `jwt-audience`: the short form's audience (beside `jwt-secret`).
    pub jwt_audience: Option<Sp<String>>,
    pub jwt: Option<RawJwt>,
    pub oidc: Option<RawOidc>,
    pub cache_seconds: Option<Sp<i64>>,
    /// flAPI's `mcp.auth.methods.<method>.required`.
    pub method_exemptions: Vec<Sp<String>>,
}

#[derive(Debug)]
pub struct RawUser {
    pub path: String,
    pub loc: Location,
    pub username: Option<Sp<String>>,
    pub password: Option<Sp<String>>,
    pub roles: Vec<Sp<String>>,
}

/// `auth.jwt:`, flapi's full form of the bearer-token settings.
#[derive(Debug, Default)]
pub struct RawJwt {
    pub loc: Location,
    pub secret: Option<Sp<String>>,
    pub issuer: Option<Sp<String>>,
    pub audience: Vec<Sp<String>>,
    /// `allow-any-audience: true`: the explicit, warned opt-out of the
    /// audience check.
    pub allow_any_audience: Option<Sp<bool>>,
    pub algorithms: Vec<Sp<String>>,
    pub leeway_seconds: Option<Sp<i64>>,
    pub subject_claim: Option<Sp<String>>,
    pub email_claim: Option<Sp<String>>,
    pub roles_claim: Option<Sp<String>>,
    pub groups_claim: Option<Sp<String>>,
    pub group_roles: Vec<(Sp<String>, Vec<Sp<String>>)>,
    pub context_claims: Vec<Sp<String>>,
    pub keys: Vec<RawKey>,
    pub oidc_issuer: Option<Sp<String>>,
    pub jwks_url: Option<Sp<String>>,
    pub jwks_cache_seconds: Option<Sp<i64>>,
    pub jwks_min_refresh_seconds: Option<Sp<i64>>,
}

/// flAPI's `auth.oidc:` block; mapped onto the JWT settings.
#[derive(Debug, Default)]
pub struct RawOidc {
    pub loc: Location,
    pub issuer_url: Option<Sp<String>>,
    pub client_id: Option<Sp<String>>,
    pub client_secret: Option<Sp<String>>,
    pub allowed_audiences: Vec<Sp<String>>,
    pub clock_skew_seconds: Option<Sp<i64>>,
    pub username_claim: Option<Sp<String>>,
    pub email_claim: Option<Sp<String>>,
    pub roles_claim: Option<Sp<String>>,
    pub role_claim_path: Option<Sp<String>>,
    pub groups_claim: Option<Sp<String>>,
    pub jwks_cache_hours: Option<Sp<i64>>,
    pub verify_expiration: Option<Sp<bool>>,
}

#[derive(Debug)]
pub struct RawKey {
    pub path: String,
    pub loc: Location,
    pub kid: Option<Sp<String>>,
    pub alg: Option<Sp<String>>,
    pub pem_file: Option<Sp<String>>,
    pub pem_env: Option<Sp<String>>,
}

/// `roles.yaml`: declared roles and static users.
#[derive(Debug, Default)]
pub struct RawRoles {
    pub roles: Vec<RawRole>,
    pub users: Vec<RawUser>,
}

#[derive(Debug)]
pub struct RawRole {
    pub name: Sp<String>,
    pub description: Option<Sp<String>>,
    pub inherits: Vec<Sp<String>>,
}

pub(crate) fn roles_list(
    map: &mut MapReader<'_>,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<Vec<Sp<String>>> {
    let path = map.key_path(key);
    map.take(key).map(|node| match &node.kind {
        Kind::Str(s) => vec![Sp::new(s.clone(), node.loc.clone())],
        _ => expect_str_list(node, &path, diags),
    })
}

fn load_users(node: &Node, path: &str, diags: &mut Diagnostics) -> Vec<RawUser> {
    let mut users = Vec::new();
    let Some(items) = expect_seq(node, path, diags) else {
        return users;
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("{path}[{i}]");
        let Some(mut map) = MapReader::new(item, &path, diags) else {
            continue;
        };
        users.push(RawUser {
            loc: item.loc.clone(),
            username: opt(&mut map, "username", diags, expect_str),
            password: opt(&mut map, "password", diags, expect_scalar_text),
            roles: roles_list(&mut map, "roles", diags).unwrap_or_default(),
            path,
        });
        map.finish(&["username", "password", "roles"], diags);
    }
    users
}

pub(crate) fn str_or_list(
    map: &mut MapReader<'_>,
    key: &str,
    diags: &mut Diagnostics,
) -> Vec<Sp<String>> {
    roles_list(map, key, diags).unwrap_or_default()
}

pub fn load_auth(
    node: &Node,
    path: &str,
    scope: AuthScope,
    diags: &mut Diagnostics,
) -> Option<RawAuth> {
    let mut map = MapReader::new(node, path, diags)?;
    let mut auth = RawAuth {
        loc: node.loc.clone(),
        path: path.to_string(),
        enabled: opt(&mut map, "enabled", diags, expect_bool),
        kind: opt(&mut map, "type", diags, expect_str),
        jwt_secret: opt(&mut map, "jwt-secret", diags, expect_scalar_text),
        jwt_issuer: opt(&mut map, "jwt-issuer", diags, expect_str),
        jwt_audience: opt(&mut map, "jwt-audience", diags, expect_str),
        ..Default::default()
    };
    let mut known = vec![
        "enabled",
        "type",
        "jwt-secret",
        "jwt-issuer",
        "jwt-audience",
    ];
    match scope {
        AuthScope::Project => {
            known.extend(["realm", "users", "jwt", "oidc", "credential-cache-seconds"]);
            auth.realm = opt(&mut map, "realm", diags, expect_str);
            auth.cache_seconds = opt(&mut map, "credential-cache-seconds", diags, expect_int);
            if let Some(users) = map.take("users") {
                auth.users = load_users(users, &yaml::join(path, "users"), diags);
            }
            if let Some(jwt) = map.take("jwt") {
                auth.jwt = load_jwt(jwt, &yaml::join(path, "jwt"), diags);
            }
            if let Some(oidc) = map.take("oidc") {
                auth.oidc = load_oidc(oidc, &yaml::join(path, "oidc"), diags);
            }
        }
        AuthScope::Mcp => {
            known.push("methods");
            if let Some(methods) = map.take("methods")
                && let Kind::Map(entries) = &methods.kind
            {
                for (method, settings) in entries {
                    let Some(name) = method.scalar_text() else {
                        continue;
                    };
                    let mpath = format!("{path}.methods.{name}");
                    let Some(mut m) = MapReader::new(settings, &mpath, diags) else {
                        continue;
                    };
                    if let Some(required) = opt(&mut m, "required", diags, expect_bool)
                        && !required.value
                    {
                        auth.method_exemptions
                            .push(Sp::new(name.clone(), required.loc.clone()));
                    }
                    m.finish(&["required"], diags);
                }
            }
        }
        AuthScope::Endpoint => {
            known.extend(["users", "roles"]);
            if let Some(users) = map.take("users") {
                auth.users = load_users(users, &yaml::join(path, "users"), diags);
            }
            auth.roles = roles_list(&mut map, "roles", diags);
        }
    }
    map.finish(&known, diags);
    Some(auth)
}

const JWT_KEYS: &[&str] = &[
    "secret",
    "issuer",
    "audience",
    "allow-any-audience",
    "algorithms",
    "leeway-seconds",
    "subject-claim",
    "email-claim",
    "roles-claim",
    "groups-claim",
    "group-roles",
    "context-claims",
    "keys",
    "oidc-issuer",
    "jwks-url",
    "jwks-cache-seconds",
    "jwks-min-refresh-seconds",
];

fn load_jwt(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<RawJwt> {
    let mut map = MapReader::new(node, path, diags)?;
    let mut jwt = RawJwt {
        loc: node.loc.clone(),
        secret: opt(&mut map, "secret", diags, expect_scalar_text),
        issuer: opt(&mut map, "issuer", diags, expect_str),
        audience: str_or_list(&mut map, "audience", diags),
        allow_any_audience: opt(&mut map, "allow-any-audience", diags, expect_bool),
        algorithms: str_or_list(&mut map, "algorithms", diags),
        leeway_seconds: opt(&mut map, "leeway-seconds", diags, expect_int),
        subject_claim: opt(&mut map, "subject-claim", diags, expect_str),
        email_claim: opt(&mut map, "email-claim", diags, expect_str),
        roles_claim: opt(&mut map, "roles-claim", diags, expect_str),
        groups_claim: opt(&mut map, "groups-claim", diags, expect_str),
        context_claims: str_or_list(&mut map, "context-claims", diags),
        oidc_issuer: opt(&mut map, "oidc-issuer", diags, expect_str),
        jwks_url: opt(&mut map, "jwks-url", diags, expect_str),
        jwks_cache_seconds: opt(&mut map, "jwks-cache-seconds", diags, expect_int),
        jwks_min_refresh_seconds: opt(&mut map, "jwks-min-refresh-seconds", diags, expect_int),
        ..Default::default()
    };
    if let Some(groups) = map.take("group-roles") {
        match &groups.kind {
            Kind::Map(entries) => {
                for (group, roles) in entries {
                    let Some(name) = group.scalar_text() else {
                        continue;
                    };
                    let gpath = format!("{path}.group-roles.{name}");
                    let roles = match &roles.kind {
                        Kind::Str(s) => vec![Sp::new(s.clone(), roles.loc.clone())],
                        _ => expect_str_list(roles, &gpath, diags),
                    };
                    jwt.group_roles
                        .push((Sp::new(name, group.loc.clone()), roles));
                }
            }
            _ => diags.error(
                &groups.loc,
                format!("{path}.group-roles"),
                format!(
                    "expected a mapping of IdP group to roles, found {}",
                    groups.type_name()
                ),
                Some("write `group-roles: {\"idp-admins\": [admin]}`".into()),
            ),
        }
    }
    if let Some(keys) = map.take("keys") {
        let kpath = format!("{path}.keys");
        if let Some(items) = expect_seq(keys, &kpath, diags) {
            for (i, item) in items.iter().enumerate() {
                let path = format!("{kpath}[{i}]");
                let Some(mut k) = MapReader::new(item, &path, diags) else {
                    continue;
                };
                jwt.keys.push(RawKey {
                    loc: item.loc.clone(),
                    kid: opt(&mut k, "kid", diags, expect_str),
                    alg: opt(&mut k, "alg", diags, expect_str),
                    pem_file: opt(&mut k, "pem-file", diags, expect_str),
                    pem_env: opt(&mut k, "pem-env", diags, expect_str),
                    path,
                });
                k.finish(&["kid", "alg", "pem-file", "pem-env"], diags);
            }
        }
    }
    map.finish(JWT_KEYS, diags);
    Some(jwt)
}

const OIDC_KEYS: &[&str] = &[
    "issuer-url",
    "client-id",
    "client-secret",
    "provider-type",
    "allowed-audiences",
    "verify-expiration",
    "clock-skew-seconds",
    "username-claim",
    "email-claim",
    "roles-claim",
    "groups-claim",
    "role-claim-path",
    "scopes",
    "jwks-cache-hours",
];

fn load_oidc(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<RawOidc> {
    let mut map = MapReader::new(node, path, diags)?;
    let oidc = RawOidc {
        loc: node.loc.clone(),
        issuer_url: opt(&mut map, "issuer-url", diags, expect_str),
        client_id: opt(&mut map, "client-id", diags, expect_str),
        client_secret: opt(&mut map, "client-secret", diags, expect_scalar_text),
        allowed_audiences: str_or_list(&mut map, "allowed-audiences", diags),
        clock_skew_seconds: opt(&mut map, "clock-skew-seconds", diags, expect_int),
        username_claim: opt(&mut map, "username-claim", diags, expect_str),
        email_claim: opt(&mut map, "email-claim", diags, expect_str),
        roles_claim: opt(&mut map, "roles-claim", diags, expect_str),
        role_claim_path: opt(&mut map, "role-claim-path", diags, expect_str),
        groups_claim: opt(&mut map, "groups-claim", diags, expect_str),
        jwks_cache_hours: opt(&mut map, "jwks-cache-hours", diags, expect_int),
        verify_expiration: opt(&mut map, "verify-expiration", diags, expect_bool),
    };
    // Informational in flAPI (the server validates tokens; it is no OAuth
    // client): accepted and unused.
    let _ = opt(&mut map, "provider-type", diags, expect_str);
    let _ = str_or_list(&mut map, "scopes", diags);
    map.finish(OIDC_KEYS, diags);
    Some(oidc)
}

/// Loads `roles.yaml`.
pub fn load_roles(root: &Node, diags: &mut Diagnostics) -> RawRoles {
    let mut out = RawRoles::default();
    let Some(mut map) = MapReader::new(root, "", diags) else {
        return out;
    };
    if let Some(roles) = map.take("roles") {
        match &roles.kind {
            Kind::Map(entries) => {
                for (key, value) in entries {
                    let Some(name) = key.scalar_text() else {
                        continue;
                    };
                    let path = format!("roles.{name}");
                    let mut role = RawRole {
                        name: Sp::new(name, key.loc.clone()),
                        description: None,
                        inherits: Vec::new(),
                    };
                    if !matches!(value.kind, Kind::Null)
                        && let Some(mut r) = MapReader::new(value, &path, diags)
                    {
                        role.description = opt(&mut r, "description", diags, expect_str);
                        role.inherits = roles_list(&mut r, "inherits", diags).unwrap_or_default();
                        r.finish(&["description", "inherits"], diags);
                    }
                    out.roles.push(role);
                }
            }
            _ => diags.error(
                &roles.loc,
                "roles",
                format!(
                    "expected a mapping of role names, found {}",
                    roles.type_name()
                ),
                Some("write `roles:` then one `name: {description: ...}` per role".into()),
            ),
        }
    }
    if let Some(users) = map.take("users") {
        out.users = load_users(users, "users", diags);
    }
    map.finish(&["roles", "users"], diags);
    out
}
