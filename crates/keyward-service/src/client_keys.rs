//! `private_key_jwt` (OIDC Core §9, RFC 7523 §3): a client proves itself with a JWT signed
//! by its own key. Keys come from the config (inline JWK Set) or the client's `jwks_uri`,
//! fetched and cached for five minutes (and fetched again once for an unknown `kid`, so a
//! client can rotate). Each assertion's `jti` is accepted once, across instances.

use crate::{Keyward, ServiceError};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keyward_core::client::{Client, ClientKeys, ClientKind};
use keyward_core::oauth_error::{OAuthError, OAuthErrorCode as E};
use keyward_store::repo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CACHE_FOR: Duration = Duration::from_secs(300);
/// An assertion may not claim to live longer than this (limits the replay cache).
const MAX_ASSERTION_LIFETIME: i64 = 600;

#[derive(Default)]
pub struct JwksCache {
    entries: Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>,
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    jti: String,
    exp: i64,
}

fn refused(msg: &str) -> OAuthError {
    OAuthError::new(E::InvalidClient, msg)
}

impl Keyward {
    async fn client_jwks(&self, client: &Client, fresh: bool) -> Result<Arc<JwkSet>, OAuthError> {
        let ClientKind::PrivateKeyJwt { keys } = &client.kind else { return Err(refused("this client has no keys")) };
        match keys {
            ClientKeys::Inline(json) => {
                serde_json::from_str(json).map(Arc::new).map_err(|_| refused("the client's configured keys do not parse"))
            }
            ClientKeys::Uri(uri) => {
                if !fresh
                    && let Some((at, set)) = self.jwks_cache.entries.lock().unwrap_or_else(|p| p.into_inner()).get(uri)
                    && at.elapsed() < CACHE_FOR
                {
                    return Ok(set.clone());
                }
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|_| refused("cannot fetch the client's keys"))?;
                let set: JwkSet = match http.get(uri).send().await.and_then(|r| r.error_for_status()) {
                    Ok(resp) => resp.json().await.map_err(|_| refused("the client's jwks_uri did not answer a JWK Set"))?,
                    Err(e) => {
                        tracing::warn!(client = %client.id, error = ?e.to_string(), "cannot fetch the client's jwks_uri");
                        return Err(refused("the client's keys could not be fetched"));
                    }
                };
                let set = Arc::new(set);
                self.jwks_cache.entries.lock().unwrap_or_else(|p| p.into_inner()).insert(uri.clone(), (Instant::now(), set.clone()));
                Ok(set)
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
        let mut verified = None;
        for fresh in [false, true] {
            let set = match self.client_jwks(client, fresh).await {
                Ok(set) => set,
                Err(e) => return Ok(Err(e)),
            };
            // A key that declares its algorithm only verifies that algorithm.
            let candidates = set.keys.iter().filter(|k| {
                (header.kid.is_none() || k.common.key_id == header.kid)
                    && k.common.key_algorithm.is_none_or(|a| a.to_string() == format!("{:?}", header.alg))
            });
            for jwk in candidates {
                let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
                if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
                    verified = Some(data.claims);
                    break;
                }
            }
            // Fetch again only for a kid the cached set does not have (the client rotated);
            // any other failure is the assertion's, and must not make us call the client.
            let unknown_kid = header.kid.is_some() && !set.keys.iter().any(|k| k.common.key_id == header.kid);
            if verified.is_some() || !unknown_kid || !matches!(client.kind, ClientKind::PrivateKeyJwt { keys: ClientKeys::Uri(_) }) {
                break;
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
