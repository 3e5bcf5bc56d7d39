//! `private_key_jwt` (OIDC Core §9, RFC 7523 §3): a client proves itself with a JWT signed
//! by its own key. Keys come from the config (inline JWK Set) or the client's `jwks_uri`,
//! fetched by [`crate::jwks_fetch`] and cached by [`crate::jwks_cache`] (fetched again for an
//! unknown `kid`, so a client can rotate, at most once a minute). Each assertion's `jti` is
//! accepted once, across instances.

use crate::jwks_cache::Decision;
use crate::{Keyward, ServiceError};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use keyward_core::client::{Client, ClientKeys, ClientKind};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode as E};
use keyward_store::repo;
use std::sync::Arc;
use std::time::Instant;

/// An assertion may not claim to live longer than this (limits the replay cache).
const MAX_ASSERTION_LIFETIME: i64 = 600;

#[derive(serde::Deserialize)]
struct AssertionClaims {
    jti: String,
    exp: i64,
}

fn refused(msg: &str) -> OAuthError {
    OAuthError::new(E::InvalidClient, msg)
}

/// The claims, if one of the set's keys that fits the header verifies the assertion.
fn verified_by(set: &JwkSet, header: &Header, assertion: &str, validation: &Validation) -> Option<AssertionClaims> {
    // A key that declares its algorithm only verifies that algorithm.
    let candidates = set.keys.iter().filter(|k| {
        (header.kid.is_none() || k.common.key_id == header.kid)
            && k.common.key_algorithm.is_none_or(|a| a.to_string() == format!("{:?}", header.alg))
    });
    candidates
        .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok())
        .find_map(|key| jsonwebtoken::decode::<AssertionClaims>(assertion, &key, validation).ok())
        .map(|data| data.claims)
}

impl Keyward {
    /// The client's keys, and whether this call fetched them. `lacking`: a set already tried
    /// that has no key with the assertion's `kid` (the client may have rotated).
    async fn client_jwks(&self, client: &Client, lacking: Option<&Arc<JwkSet>>) -> Result<(Arc<JwkSet>, bool), OAuthError> {
        let ClientKind::PrivateKeyJwt { keys } = &client.kind else { return Err(refused("this client has no keys")) };
        let (uri, allow_private) = match keys {
            ClientKeys::Inline(json) => {
                return serde_json::from_str(json)
                    .map(|set| (Arc::new(set), false))
                    .map_err(|_| refused("the client's configured keys do not parse"));
            }
            ClientKeys::Uri { uri, allow_private } => (uri, *allow_private),
        };
        let entry = self.jwks_cache.entry(&client.id, uri);
        let mut entry = entry.lock().await;
        let now = Instant::now();
        let reason = match entry.decide(now, lacking) {
            Decision::Use(set) => return Ok((set, false)),
            Decision::Refuse(why) => {
                // DEBUG: anyone can send such assertions; the fetch failure itself was a WARN.
                tracing::debug!(client = ?client.id, jwks_uri = ?uri, why, "client assertion refused without fetching the keys");
                return Err(refused("the client's keys are not available; not fetched again yet"));
            }
            Decision::Fetch(reason) => reason,
        };
        match self.jwks_fetcher.fetch(uri, allow_private).await {
            Ok(set) => {
                let set = Arc::new(set);
                entry.record(now, reason, Some(set.clone()));
                tracing::info!(client = ?client.id, jwks_uri = ?uri, keys = set.keys.len(), ?reason, "fetched the client's jwks_uri");
                Ok((set, true))
            }
            Err(e) => {
                entry.record(now, reason, None);
                tracing::warn!(client = ?client.id, jwks_uri = ?uri, error = ?e.to_string(), "cannot fetch the client's jwks_uri");
                Err(refused("the client's keys could not be fetched"))
            }
        }
    }

    /// Verifies a client assertion for `endpoint` (its full URL): signature by one of the
    /// client's keys, `iss` = `sub` = client id, `aud` naming this endpoint or the issuer,
    /// unexpired, short-lived, and a `jti` never seen before.
    pub async fn verify_client_assertion(
        self: &Arc<Self>,
        client: &Client,
        assertion: &str,
        endpoint: &str,
    ) -> Result<Result<(), OAuthError>, ServiceError> {
        let Ok(header) = jsonwebtoken::decode_header(assertion) else { return Ok(Err(refused("the client assertion is malformed"))) };
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 | Algorithm::EdDSA) {
            return Ok(Err(refused("the client assertion's algorithm is not accepted")));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&client.id]);
        validation.sub = Some(client.id.clone());
        validation.set_audience(&[endpoint, &self.config().issuer, &format!("{}/token", self.config().issuer)]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.leeway = 5;
        // RFC 7523 §3: not before `nbf` either.
        validation.validate_nbf = true;
        let (set, fetched) = match self.client_jwks(client, None).await {
            Ok(found) => found,
            Err(e) => return Ok(Err(e)),
        };
        let mut verified = verified_by(&set, &header, assertion, &validation);
        // Fetch again only for a kid the cached set does not have (the client rotated);
        // any other failure is the assertion's, and must not make us call the client.
        let unknown_kid = header.kid.is_some() && !set.keys.iter().any(|k| k.common.key_id == header.kid);
        let from_uri = matches!(client.kind, ClientKind::PrivateKeyJwt { keys: ClientKeys::Uri { .. } });
        if verified.is_none() && unknown_kid && from_uri && !fetched {
            match self.client_jwks(client, Some(&set)).await {
                Ok((newer, _)) => verified = verified_by(&newer, &header, assertion, &validation),
                Err(e) => return Ok(Err(e)),
            }
        }
        let Some(claims) = verified else { return Ok(Err(refused("the client assertion's signature or claims are not valid"))) };
        let now = self.now();
        if claims.exp - now > MAX_ASSERTION_LIFETIME {
            return Ok(Err(refused("the client assertion lives too long (at most 10 minutes)")));
        }
        let kw = self.clone();
        let key = keyward_core::secret::hash_secret(&format!("{}:{}", client.id, claims.jti));
        let first = tokio::task::spawn_blocking(move || -> Result<bool, ServiceError> {
            Ok(repo::jtis::first_use(&mut *kw.conn()?, &key, claims.exp + 60)?)
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        if !first {
            return Ok(Err(refused("this client assertion was used before (jti replay)")));
        }
        Ok(Ok(()))
    }
}
