//! Client authentication at the token endpoint (RFC 6749 §2.3, OIDC Core §9):
//! `client_secret_basic`, `client_secret_post`, `private_key_jwt` (RFC 7523: this module
//! picks the client; the service verifies the assertion's signature and claims), and `none`
//! for public clients (which then must prove possession with PKCE).

use crate::client::Client;
use crate::oauth_error::{OAuthError, OAuthErrorCode as E};

/// What the request presented.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PresentedCredentials {
    /// From `Authorization: Basic`, already form-url-decoded (RFC 6749 §2.3.1).
    pub basic: Option<(String, String)>,
    pub form_client_id: Option<String>,
    pub form_client_secret: Option<String>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

/// RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// The client is known; its assertion still has to be verified.
    PrivateKeyJwt,
    None,
}

/// The `sub` of a client assertion, read without verification (only to pick the client).
fn assertion_subject(assertion: &str) -> Option<String> {
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}

/// Authenticates the client. A failed Basic authentication must be answered with 401 and
/// `WWW-Authenticate` (RFC 6749 §5.2); the returned method says which was tried.
pub fn authenticate_client<'c>(
    creds: &PresentedCredentials,
    lookup: impl FnOnce(&str) -> Option<&'c Client>,
) -> Result<(&'c Client, AuthMethod), (OAuthError, AuthMethod)> {
    if let Some(assertion) = &creds.assertion {
        let fail = |msg: &str| Err((OAuthError::new(E::InvalidClient, msg), AuthMethod::PrivateKeyJwt));
        if creds.basic.is_some() || creds.form_client_secret.is_some() {
            return Err((OAuthError::new(E::InvalidRequest, "use one client authentication method, not two"), AuthMethod::PrivateKeyJwt));
        }
        if creds.assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION) {
            return Err((
                OAuthError::new(E::InvalidRequest, "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                AuthMethod::PrivateKeyJwt,
            ));
        }
        let Some(sub) = assertion_subject(assertion) else { return fail("the client assertion is not a readable JWT") };
        if creds.form_client_id.as_ref().is_some_and(|id| *id != sub) {
            return fail("client_id does not match the assertion's subject");
        }
        return match lookup(&sub) {
            Some(client) if matches!(client.kind, crate::client::ClientKind::PrivateKeyJwt { .. }) => {
                Ok((client, AuthMethod::PrivateKeyJwt))
            }
            _ => fail("client authentication failed"),
        };
    }
    let (id, secret, method) = match (&creds.basic, &creds.form_client_id, &creds.form_client_secret) {
        (Some(_), _, Some(_)) => {
            return Err((
                OAuthError::new(E::InvalidRequest, "use one client authentication method, not two"),
                AuthMethod::ClientSecretBasic,
            ));
        }
        (Some((id, secret)), form_id, None) => {
            if form_id.as_ref().is_some_and(|f| f != id) {
                return Err((
                    OAuthError::new(E::InvalidRequest, "client_id does not match the Authorization header"),
                    AuthMethod::ClientSecretBasic,
                ));
            }
            (id.as_str(), Some(secret.as_str()), AuthMethod::ClientSecretBasic)
        }
        (None, Some(id), Some(secret)) => (id.as_str(), Some(secret.as_str()), AuthMethod::ClientSecretPost),
        (None, Some(id), None) => (id.as_str(), None, AuthMethod::None),
        (None, None, _) => {
            return Err((OAuthError::new(E::InvalidClient, "client authentication is required"), AuthMethod::None));
        }
    };
    let unknown = || (OAuthError::new(E::InvalidClient, "client authentication failed"), method);
    let client = lookup(id).ok_or_else(unknown)?;
    if matches!(client.kind, crate::client::ClientKind::PrivateKeyJwt { .. }) {
        return Err((OAuthError::new(E::InvalidClient, "this client authenticates with private_key_jwt"), method));
    }
    match (client.is_public(), secret) {
        (true, None) => Ok((client, AuthMethod::None)),
        (true, Some(_)) => Err((OAuthError::new(E::InvalidClient, "this is a public client: send no secret"), method)),
        (false, None) => Err(unknown()),
        (false, Some(s)) if client.secret_matches(s) => Ok((client, method)),
        (false, Some(_)) => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientKind;
    use crate::secret::hash_secret;

    fn clients() -> [Client; 2] {
        let base = Client {
            id: "app".into(),
            name: "App".into(),
            kind: ClientKind::Confidential { secret_hashes: vec![hash_secret("s3cret").into()] },
            redirect_uris: vec![],
            first_party: true,
            ..Client::default()
        };
        let public = Client { id: "spa".into(), kind: ClientKind::Public, ..base.clone() };
        [base, public]
    }

    fn run(c: PresentedCredentials) -> Result<AuthMethod, (&'static str, AuthMethod)> {
        let cs = clients();
        authenticate_client(&c, |id| cs.iter().find(|c| c.id == id)).map(|(_, m)| m).map_err(|(e, m)| (e.code.as_str(), m))
    }

    #[test]
    fn basic_post_and_none() {
        assert_eq!(
            run(PresentedCredentials { basic: Some(("app".into(), "s3cret".into())), ..Default::default() }),
            Ok(AuthMethod::ClientSecretBasic)
        );
        assert_eq!(
            run(PresentedCredentials {
                form_client_id: Some("app".into()),
                form_client_secret: Some("s3cret".into()),
                ..Default::default()
            }),
            Ok(AuthMethod::ClientSecretPost)
        );
        assert_eq!(run(PresentedCredentials { form_client_id: Some("spa".into()), ..Default::default() }), Ok(AuthMethod::None));
    }

    #[test]
    fn b15_wrong_secret_is_invalid_client() {
        assert_eq!(
            run(PresentedCredentials { basic: Some(("app".into(), "nope".into())), ..Default::default() }),
            Err(("invalid_client", AuthMethod::ClientSecretBasic))
        );
        assert_eq!(
            run(PresentedCredentials { form_client_id: Some("app".into()), ..Default::default() }),
            Err(("invalid_client", AuthMethod::None))
        );
        assert_eq!(
            run(PresentedCredentials { form_client_id: Some("ghost".into()), form_client_secret: Some("x".into()), ..Default::default() }),
            Err(("invalid_client", AuthMethod::ClientSecretPost))
        );
        assert_eq!(run(PresentedCredentials::default()).map_err(|e| e.0), Err("invalid_client"));
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let c = PresentedCredentials {
            basic: Some(("app".into(), "s3cret".into())),
            form_client_secret: Some("s3cret".into()),
            ..Default::default()
        };
        assert_eq!(run(c).map_err(|e| e.0), Err("invalid_request"));
    }
}
