//! Authorization request validation (RFC 6749 §4.1.1, OIDC Core §3.1.2), as a pipeline of
//! named checks in the order the specs require. The client and its redirect URI are verified
//! first: until both are known good, every error is shown to the person and never redirected
//! (RFC 6749 §4.1.2.1, CHECKLIST B2). After that, errors go back to the verified URI.

use crate::client::Client;
use crate::oauth_error::{OAuthError, OAuthErrorCode as E};
use crate::pkce;
use serde::{Deserialize, Serialize};

/// A request that passed every check, ready to be answered with a code. Stored with a login
/// attempt while the person signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Requested authentication context classes, in order of preference (OIDC Core §3.1.2.1).
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// An ID token Keyward issued earlier, naming who the app expects (verified by the service).
    #[serde(default)]
    pub id_token_hint: Option<String>,
    /// Claims asked for by name with the `claims` parameter (OIDC Core §5.5), as
    /// `id_token:NAME` / `userinfo:NAME` words.
    #[serde(default)]
    pub claims: String,
}

/// `acr` for phishing-resistant authentication (OpenID EAP ACR values): any passkey.
pub const ACR_PHR: &str = "phr";
/// `acr` for phishing-resistant, hardware-protected authentication: a device-bound passkey.
pub const ACR_PHRH: &str = "phrh";

impl AuthorizationRequest {
    pub fn prompt_has(&self, value: &str) -> bool {
        self.prompt.iter().any(|p| p == value)
    }

    /// The scopes the person must have consented to: `scope`, plus the scope carrying each
    /// claim asked for by name with `claims` (OIDC Core §5.5; only claims whose scope the
    /// client is allowed are kept on the request).
    pub fn consent_scope(&self) -> crate::scope::Scopes {
        let mut all = self.scope.clone();
        for word in self.claims.split(' ') {
            if let Some(s) = word.split_once(':').and_then(|(_, claim)| crate::claims::carrying_scope(claim)) {
                all.push(' ');
                all.push_str(s);
            }
        }
        crate::scope::Scopes::parse_with(&all, |_| true)
    }

    /// Whether the app asked for a passkey: `acr_values` names only phishing-resistant
    /// classes. (A list that also names a weaker class is satisfied by any sign-in.)
    pub fn requires_passkey(&self) -> bool {
        !self.acr_values.is_empty() && self.acr_values.iter().all(|a| a == ACR_PHR || a == ACR_PHRH)
    }

    /// Whether a sign-in with these `amr` values satisfies the requested `acr_values`.
    pub fn satisfied_by(&self, amr: &str) -> bool {
        if !self.requires_passkey() {
            return true;
        }
        acr_for_amr(amr).is_some_and(|got| self.acr_values.iter().any(|want| want == got || (want == ACR_PHR && got == ACR_PHRH)))
    }
}

/// The `acr` a sign-in earns from its `amr` (RFC 8176 values, space-separated): a
/// device-bound passkey is `phrh`, a synced one `phr`; other methods carry no class.
pub fn acr_for_amr(amr: &str) -> Option<&'static str> {
    let has = |v: &str| amr.split(' ').any(|a| a == v);
    if has("hwk") {
        Some(ACR_PHRH)
    } else if has("swk") {
        Some(ACR_PHR)
    } else {
        None
    }
}

/// Why the client or redirect URI cannot be trusted: shown as a page, never redirected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UntrustedRequest {
    MissingClientId,
    UnknownClient,
    MissingRedirectUri,
    UnregisteredRedirectUri,
    DuplicateParameter(&'static str),
}

impl UntrustedRequest {
    /// A sentence for the person, saying what went wrong and what to do.
    pub fn explain(&self) -> &'static str {
        match self {
            Self::MissingClientId => "The app that sent you here did not say who it is (no client_id).",
            Self::UnknownClient => "The app that sent you here is not registered with this sign-in service.",
            Self::MissingRedirectUri => "The app that sent you here did not say where to return you (no redirect_uri).",
            Self::UnregisteredRedirectUri => {
                "The app asked to return you to an address that is not registered for it, so you were not sent there."
            }
            Self::DuplicateParameter(_) => "The sign-in link is malformed: a parameter appears twice.",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeRejection {
    /// Show an error page; the request's redirect URI is not to be used.
    Untrusted(UntrustedRequest),
    /// Redirect to the verified URI with `error`, `state` and `iss` (RFC 9207).
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

/// Parameters as received, in order; repeated names are kept so they can be refused.
pub struct Params<'a>(pub &'a [(String, String)]);

impl Params<'_> {
    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The single value of `name`, `Ok(None)` when absent (an empty value counts as absent,
    /// RFC 6749 §3.1), `Err(())` when repeated.
    fn one(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut it = self.all(name);
        let first = it.next();
        if it.next().is_some() {
            return Err(());
        }
        Ok(first.filter(|v| !v.is_empty()))
    }
}

const SINGLE_VALUED: &[&str] = &[
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "response_mode",
    "request",
    "request_uri",
    "display",
    "ui_locales",
    "claims_locales",
    "acr_values",
    "id_token_hint",
    "claims",
];

/// The most bytes a whole authorization request may carry: the query string of a GET, the
/// form body of a POST (the web layer refuses more before parsing). The longest legitimate
/// request, with an 8 KiB `id_token_hint`, fits.
pub const MAX_AUTHORIZATION_REQUEST_BYTES: usize = 16 * 1024;

/// The longest value accepted for each parameter Keyward reads, in bytes (issue 14, finding
/// 3: every value may end up stored with a login attempt). Generous for what relying parties
/// send: `state` carries some RPs' encrypted return data, `nonce` is a random string, `scope`
/// may list URL-shaped API scopes; the rest are short words, an address, or a small JSON object.
/// `client_id` and `redirect_uri` must match a registration, and `request`/`request_uri` are
/// refused whatever their length.
pub const PARAMETER_LIMITS: &[(&str, usize)] = &[
    ("response_type", 64),
    ("response_mode", 32),
    ("scope", 2048),
    ("state", 2048),
    ("nonce", 512),
    ("code_challenge", 128),
    ("code_challenge_method", 16),
    ("prompt", 64),
    ("max_age", 20),
    ("login_hint", 254),
    ("display", 16),
    ("ui_locales", 256),
    ("claims_locales", 256),
    ("acr_values", 512),
    ("id_token_hint", MAX_ID_TOKEN_HINT_LEN),
    ("claims", 4096),
];

/// The first parameter whose value is longer than [`PARAMETER_LIMITS`] allows, with its limit.
pub fn over_long_parameter(params: &[(String, String)]) -> Option<(&'static str, usize)> {
    params.iter().find_map(|(k, v)| PARAMETER_LIMITS.iter().find(|(name, max)| k == name && v.len() > *max).copied())
}

/// Runs every check. `lookup` resolves a `client_id` to its registration.
pub fn validate_authorization_request<'c>(
    params: &[(String, String)],
    lookup: impl FnOnce(&str) -> Option<&'c Client>,
) -> Result<(AuthorizationRequest, &'c Client), AuthorizeRejection> {
    let p = Params(params);
    let (client, redirect_uri) = check_client_and_redirect_uri(&p, lookup).map_err(AuthorizeRejection::Untrusted)?;
    // `state` must be echoed even on errors, so read it before anything else can fail.
    let state = p.one("state").ok().flatten().map(str::to_owned);
    let fail = |code, msg: &str| AuthorizeRejection::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state.clone(),
        error: OAuthError::new(code, msg),
    };
    if let Some(name) = SINGLE_VALUED.iter().find(|n| p.one(n).is_err()) {
        return Err(fail(E::InvalidRequest, &format!("the {name} parameter is repeated")));
    }
    // Before anything parses or keeps a value (issue 14, finding 3).
    if let Some((name, max)) = over_long_parameter(params) {
        return Err(fail(E::InvalidRequest, &format!("{name} is too long (at most {max} bytes)")));
    }
    let get = |name: &str| p.one(name).ok().flatten();

    // OIDC Core §6: request objects are not supported; say so with the dedicated codes.
    if get("request").is_some() {
        return Err(fail(E::RequestNotSupported, "request objects are not supported"));
    }
    if get("request_uri").is_some() {
        return Err(fail(E::RequestUriNotSupported, "request_uri is not supported"));
    }
    match get("response_type") {
        None => return Err(fail(E::InvalidRequest, "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(E::UnsupportedResponseType, "only response_type=code is supported"));
        }
    }
    match get("response_mode") {
        None | Some("query") => {}
        Some(_) => {
            return Err(fail(E::InvalidRequest, "only response_mode=query is supported"));
        }
    }
    let scope = client.permitted_scope(get("scope").unwrap_or(""));
    if !scope.contains("openid") {
        return Err(fail(E::InvalidScope, "the scope must include openid"));
    }
    let code_challenge = check_pkce(get("code_challenge"), get("code_challenge_method"), client).map_err(|(code, msg)| fail(code, msg))?;
    let prompt = check_prompt(get("prompt")).map_err(|msg| fail(E::InvalidRequest, msg))?;
    let max_age = match get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(fail(E::InvalidRequest, "max_age must be a non-negative number of seconds"));
            }
        },
    };
    let nonce = get("nonce").map(str::to_owned);
    let login_hint = get("login_hint").map(str::to_owned);
    let claims = match get("claims") {
        None => String::new(),
        Some(raw) => requested_claims(raw, client).map_err(|msg| fail(E::InvalidRequest, msg))?,
    };
    let id_token_hint = get("id_token_hint").map(str::to_owned);
    let acr_values: Vec<String> = get("acr_values").unwrap_or("").split(' ').filter(|a| !a.is_empty()).take(8).map(str::to_owned).collect();

    Ok((
        AuthorizationRequest {
            client_id: client.id.clone(),
            redirect_uri,
            scope: scope.as_string(),
            state,
            nonce,
            code_challenge,
            prompt,
            max_age,
            login_hint,
            acr_values,
            id_token_hint,
            claims,
        },
        client,
    ))
}

fn check_client_and_redirect_uri<'c>(
    p: &Params<'_>,
    lookup: impl FnOnce(&str) -> Option<&'c Client>,
) -> Result<(&'c Client, String), UntrustedRequest> {
    let client_id =
        p.one("client_id").map_err(|_| UntrustedRequest::DuplicateParameter("client_id"))?.ok_or(UntrustedRequest::MissingClientId)?;
    let client = lookup(client_id).ok_or(UntrustedRequest::UnknownClient)?;
    let requested = p
        .one("redirect_uri")
        .map_err(|_| UntrustedRequest::DuplicateParameter("redirect_uri"))?
        .ok_or(UntrustedRequest::MissingRedirectUri)?;
    // Answer on the registered URI (with the request's port on loopback, RFC 8252 §7.3).
    let redirect_uri = client.match_redirect_uri(requested).ok_or(UntrustedRequest::UnregisteredRedirectUri)?;
    Ok((client, redirect_uri))
}

/// RFC 7636 §4.3–4.4 and RFC 9700 §2.1.1: S256 only; required for public clients and, unless
/// the client opted out, for confidential ones.
fn check_pkce(
    challenge: Option<&str>,
    method: Option<&str>,
    client: &Client,
) -> Result<Option<String>, (crate::OAuthErrorCode, &'static str)> {
    match (challenge, method) {
        (None, Some(_)) => Err((E::InvalidRequest, "code_challenge_method was sent without code_challenge")),
        (None, None) if client.pkce_required() => {
            Err((E::InvalidRequest, "PKCE is required: send code_challenge with code_challenge_method=S256"))
        }
        (None, None) => Ok(None),
        (Some(_), None | Some("plain")) => Err((E::InvalidRequest, "only code_challenge_method=S256 is supported")),
        (Some(_), Some(m)) if m != "S256" => Err((E::InvalidRequest, "only code_challenge_method=S256 is supported")),
        (Some(c), Some(_)) if !pkce::is_valid_s256_challenge(c) => Err((E::InvalidRequest, "code_challenge is not a valid S256 challenge")),
        (Some(c), Some(_)) => Ok(Some(c.to_owned())),
    }
}

/// The longest `id_token_hint` accepted (Keyward's own ID tokens are far shorter).
pub const MAX_ID_TOKEN_HINT_LEN: usize = 8192;

/// Claims Keyward can release on request, beyond what the scope gives.
pub const REQUESTABLE_CLAIMS: &[&str] = &["email", "email_verified", "name"];

/// OIDC Core §5.5: `{"id_token": {"name": {"essential": true}}, "userinfo": {...}}`. Names
/// Keyward does not hold, and claims whose scope the client is not allowed, are omitted
/// (§5.5.1: even an essential claim that cannot be released does not fail the request);
/// anything that is not such an object is refused.
fn requested_claims(raw: &str, client: &Client) -> Result<String, &'static str> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| "claims is not a JSON object")?;
    let obj = value.as_object().ok_or("claims is not a JSON object")?;
    let mut out = Vec::new();
    for place in ["id_token", "userinfo"] {
        let Some(members) = obj.get(place) else { continue };
        let members = members.as_object().ok_or("claims.id_token and claims.userinfo must be JSON objects")?;
        for name in members.keys() {
            let allowed = crate::claims::carrying_scope(name).is_some_and(|s| client.permitted_scope(s).contains(s));
            if REQUESTABLE_CLAIMS.contains(&name.as_str()) && allowed {
                out.push(format!("{place}:{name}"));
            }
        }
    }
    Ok(out.join(" "))
}

/// OIDC Core §3.1.2.1: space-separated; `none` may not be combined with other values.
fn check_prompt(raw: Option<&str>) -> Result<Vec<String>, &'static str> {
    let values: Vec<String> = raw.unwrap_or("").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    for v in &values {
        if !matches!(v.as_str(), "none" | "login" | "consent" | "select_account" | "create") {
            return Err("prompt has an unsupported value");
        }
    }
    if values.len() > 1 && values.iter().any(|v| v == "none") {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(values)
}

#[cfg(test)]
#[path = "authorize_tests.rs"]
mod tests;
