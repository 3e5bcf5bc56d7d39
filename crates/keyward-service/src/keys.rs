//! Signing keys: generated on first start (one each for RS256, ES256 and EdDSA), rotated by
//! command or on a schedule (published before they sign, kept published until every token
//! they signed has expired), stored in the database
//! with the private half sealed by AES-256-GCM under a key derived from the master key,
//! parsed once at start and kept as ready-to-use aws-lc-rs key pairs. JWTs are assembled
//! here and signed with the cached pairs, because `jsonwebtoken::encode` re-parses the key
//! on every signature (CRATES.md); jsonwebtoken still verifies.

use crate::ServiceError;
use crate::master_key::MasterKey;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keyward_core::client::SigningAlg;
use keyward_store::models::SigningKeyRow;
use keyward_store::{DbConnection, repo};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

struct LoadedKey {
    kid: String,
    alg: SigningAlg,
    activates_at: i64,
    retired_at: Option<i64>,
    signer: Signer,
}

/// The published keys at one moment, ready to sign and verify, plus the JWKS document
/// served as is.
pub struct KeySet {
    keys: Vec<LoadedKey>,
    decoding: HashMap<String, (DecodingKey, Algorithm)>,
    jwks_json: Arc<str>,
    /// What the set was built from, to skip rebuilding when nothing changed.
    fingerprint: Vec<(String, i64, Option<i64>, Option<i64>)>,
}

/// The key set every request uses, swapped whole when the database's keys change (a
/// rotation by `keyward keys rotate`, by the schedule, or by another instance).
pub struct KeyRing {
    current: RwLock<Arc<KeySet>>,
    sealer: LessSafeKey,
}

fn fingerprint(rows: &[SigningKeyRow]) -> Vec<(String, i64, Option<i64>, Option<i64>)> {
    rows.iter().map(|r| (r.kid.clone(), r.activates_at, r.retired_at, r.unpublish_at)).collect()
}

/// A key able to sign at `now`: active and not yet retired.
fn signs_at(activates_at: i64, retired_at: Option<i64>, now: i64) -> bool {
    activates_at <= now && retired_at.is_none_or(|r| now < r)
}

impl KeyRing {
    /// Loads the published keys, creating a key for any algorithm that has none able to sign.
    pub fn load_or_create(conn: &mut DbConnection, master: &MasterKey, now: i64) -> Result<KeyRing, ServiceError> {
        let sealer = sealer(master)?;
        let existing = repo::keys::published(conn, now)?;
        for alg in SigningAlg::ALL {
            let usable = existing.iter().any(|k| k.alg == alg.as_str() && signs_at(k.activates_at, k.retired_at, now));
            let pending = existing.iter().any(|k| k.alg == alg.as_str() && k.activates_at > now);
            if !usable && !pending {
                let row = new_key(&sealer, alg, now, now)?;
                repo::keys::insert(conn, &row)?;
                tracing::info!(kid = %row.kid, alg = %row.alg, "generated a signing key");
            }
        }
        let set = build(&sealer, repo::keys::published(conn, now)?)?;
        Ok(KeyRing { current: RwLock::new(Arc::new(set)), sealer })
    }

    fn set(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the published keys; rebuilds the set only when they changed. Returns true
    /// when it did.
    pub fn reload(&self, conn: &mut DbConnection, now: i64) -> Result<bool, ServiceError> {
        let rows = repo::keys::published(conn, now)?;
        if fingerprint(&rows) == self.set().fingerprint {
            return Ok(false);
        }
        let set = build(&self.sealer, rows)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
        Ok(true)
    }

    /// Rotates `alg`: a new key is published now and signs from `now + publish_ahead`; the
    /// keys it replaces stop signing then and leave the JWKS `keep_published` later.
    /// Returns the new key's kid, or None when another process rotated first.
    pub fn rotate(
        &self,
        conn: &mut DbConnection,
        alg: SigningAlg,
        now: i64,
        publish_ahead: i64,
        keep_published: i64,
    ) -> Result<Option<String>, ServiceError> {
        let activates_at = now + publish_ahead;
        keyward_store::write_transaction(&mut *conn, |c| {
            let current: Vec<SigningKeyRow> =
                repo::keys::published(c, now)?.into_iter().filter(|k| k.alg == alg.as_str() && k.retired_at.is_none()).collect();
            for old in &current {
                // Guarded: of two processes rotating at once, one retires the key, the other stops.
                if !repo::keys::retire(c, &old.kid, activates_at, activates_at + keep_published)? {
                    return Ok(None);
                }
            }
            let row = new_key(&self.sealer, alg, now, activates_at)?;
            repo::keys::insert(c, &row)?;
            tracing::info!(kid = %row.kid, alg = %row.alg, activates_at, "rotated a signing key");
            Ok(Some(row.kid))
        })
    }

    /// Algorithms whose signing key is older than `max_age` with no successor waiting.
    pub fn due_for_rotation(&self, now: i64, max_age: i64) -> Vec<SigningAlg> {
        let set = self.set();
        SigningAlg::ALL
            .into_iter()
            .filter(|alg| {
                let mine = set.keys.iter().filter(|k| k.alg == *alg);
                let newest = mine.clone().map(|k| k.activates_at).max();
                let pending = mine.clone().any(|k| k.activates_at > now);
                !pending && newest.is_some_and(|t| t + max_age <= now)
            })
            .collect()
    }

    pub fn jwks_json(&self) -> Arc<str> {
        self.set().jwks_json.clone()
    }

    /// Signs `claims` as a compact JWS with the newest key of `alg` that signs at `now`.
    pub fn sign(&self, now: i64, alg: SigningAlg, typ: &str, claims: &impl Serialize) -> Result<String, ServiceError> {
        let set = self.set();
        let key = set
            .keys
            .iter()
            .filter(|k| k.alg == alg && signs_at(k.activates_at, k.retired_at, now))
            .max_by_key(|k| k.activates_at)
            .ok_or_else(|| ServiceError::Crypto(format!("no {} key signs now", alg.as_str())))?;
        let header = serde_json::json!({ "alg": alg.as_str(), "kid": key.kid, "typ": typ });
        let mut jws = URL_SAFE_NO_PAD.encode(header.to_string());
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(|e| ServiceError::Crypto(e.to_string()))?));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let sig = match &key.signer {
            Signer::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, jws.as_bytes(), &mut sig)
                    .map_err(|_| ServiceError::Crypto("RSA signing failed".into()))?;
                sig
            }
            Signer::Ec(pair) => {
                pair.sign(&rng, jws.as_bytes()).map_err(|_| ServiceError::Crypto("ECDSA signing failed".into()))?.as_ref().to_vec()
            }
            Signer::Ed(pair) => pair.sign(jws.as_bytes()).as_ref().to_vec(),
        };
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(jws)
    }

    /// Verifies a JWT signed by one of our published keys, with `validation` as the base rules.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, mut validation: Validation) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let set = self.set();
        let (key, alg) = set.decoding.get(header.kid.as_deref()?)?;
        if header.alg != *alg {
            return None;
        }
        validation.algorithms = vec![*alg];
        jsonwebtoken::decode::<T>(token, key, &validation).ok().map(|d| d.claims)
    }
}

fn new_key(sealer: &LessSafeKey, alg: SigningAlg, now: i64, activates_at: i64) -> Result<SigningKeyRow, ServiceError> {
    let pkcs8 = generate(alg)?;
    let (_, jwk) = public_jwk(alg, &parse(alg, &pkcs8)?)?;
    let kid = thumbprint(&jwk);
    Ok(SigningKeyRow {
        private_key_encrypted: seal(sealer, &kid, &pkcs8)?,
        kid,
        alg: alg.as_str().into(),
        created_at: now,
        retired_at: None,
        activates_at,
        unpublish_at: None,
    })
}

fn build(sealer: &LessSafeKey, rows: Vec<SigningKeyRow>) -> Result<KeySet, ServiceError> {
    let fingerprint = fingerprint(&rows);
    let mut keys = Vec::new();
    let mut decoding = HashMap::new();
    let mut jwks = Vec::new();
    for row in rows {
        let alg =
            SigningAlg::parse(&row.alg).ok_or_else(|| ServiceError::Crypto(format!("key {} has unknown alg {}", row.kid, row.alg)))?;
        let pkcs8 = open(sealer, &row.kid, &row.private_key_encrypted)?;
        let signer = parse(alg, &pkcs8)?;
        let (dk, mut jwk) = public_jwk(alg, &signer)?;
        jwk.insert("kid".into(), row.kid.clone().into());
        jwk.insert("alg".into(), alg.as_str().into());
        jwk.insert("use".into(), "sig".into());
        decoding.insert(row.kid.clone(), (dk, jwt_alg(alg)));
        jwks.push(serde_json::Value::Object(jwk));
        keys.push(LoadedKey { kid: row.kid, alg, activates_at: row.activates_at, retired_at: row.retired_at, signer });
    }
    let jwks_json: Arc<str> = serde_json::json!({ "keys": jwks }).to_string().into();
    Ok(KeySet { keys, decoding, jwks_json, fingerprint })
}

fn jwt_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::Rs256 => Algorithm::RS256,
        SigningAlg::Es256 => Algorithm::ES256,
        SigningAlg::EdDsa => Algorithm::EdDSA,
    }
}

fn generate(alg: SigningAlg) -> Result<Vec<u8>, ServiceError> {
    let err = |_| ServiceError::Crypto("key generation failed".into());
    Ok(match alg {
        SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048).map_err(err)?.as_der().map_err(err)?.as_ref().to_vec(),
        SigningAlg::Es256 => {
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(err)?.to_pkcs8v1().map_err(err)?.as_ref().to_vec()
        }
        SigningAlg::EdDsa => Ed25519KeyPair::generate().map_err(err)?.to_pkcs8().map_err(err)?.as_ref().to_vec(),
    })
}

fn parse(alg: SigningAlg, pkcs8: &[u8]) -> Result<Signer, ServiceError> {
    let err = |_| ServiceError::Crypto("stored signing key does not parse".into());
    Ok(match alg {
        SigningAlg::Rs256 => Signer::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(err)?),
        SigningAlg::Es256 => Signer::Ec(EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(err)?),
        SigningAlg::EdDsa => Signer::Ed(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(err)?),
    })
}

type JwkMap = serde_json::Map<String, serde_json::Value>;

/// The public half as a JWK (RFC 7517/7518) and as a jsonwebtoken decoding key.
fn public_jwk(alg: SigningAlg, signer: &Signer) -> Result<(DecodingKey, JwkMap), ServiceError> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let mut jwk = JwkMap::new();
    let decoding = match (alg, signer) {
        (SigningAlg::Rs256, Signer::Rsa(pair)) => {
            let public = pair.public_key();
            let n = b64(public.modulus().big_endian_without_leading_zero());
            let e = b64(public.exponent().big_endian_without_leading_zero());
            let dk = DecodingKey::from_rsa_components(&n, &e).map_err(|e| ServiceError::Crypto(e.to_string()))?;
            jwk.insert("kty".into(), "RSA".into());
            jwk.insert("n".into(), n.into());
            jwk.insert("e".into(), e.into());
            dk
        }
        (SigningAlg::Es256, Signer::Ec(pair)) => {
            // Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
            let point = pair.public_key().as_ref();
            if point.len() != 65 {
                return Err(ServiceError::Crypto("unexpected P-256 public key length".into()));
            }
            let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
            let dk = DecodingKey::from_ec_components(&x, &y).map_err(|e| ServiceError::Crypto(e.to_string()))?;
            jwk.insert("kty".into(), "EC".into());
            jwk.insert("crv".into(), "P-256".into());
            jwk.insert("x".into(), x.into());
            jwk.insert("y".into(), y.into());
            dk
        }
        (SigningAlg::EdDsa, Signer::Ed(pair)) => {
            let x = b64(pair.public_key().as_ref());
            let dk = DecodingKey::from_ed_components(&x).map_err(|e| ServiceError::Crypto(e.to_string()))?;
            jwk.insert("kty".into(), "OKP".into());
            jwk.insert("crv".into(), "Ed25519".into());
            jwk.insert("x".into(), x.into());
            dk
        }
        _ => {
            return Err(ServiceError::Crypto("key type does not match its algorithm".into()));
        }
    };
    Ok((decoding, jwk))
}

/// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(jwk: &JwkMap) -> String {
    let members: &[&str] = match jwk.get("kty").and_then(|k| k.as_str()) {
        Some("RSA") => &["e", "kty", "n"],
        Some("OKP") => &["crv", "kty", "x"],
        _ => &["crv", "kty", "x", "y"],
    };
    let canonical: serde_json::Map<String, serde_json::Value> =
        members.iter().filter_map(|m| jwk.get(*m).map(|v| ((*m).to_owned(), v.clone()))).collect();
    keyward_core::secret::sha256_b64url(serde_json::Value::Object(canonical).to_string().as_bytes())
}

fn sealer(master: &MasterKey) -> Result<LessSafeKey, ServiceError> {
    let key = master.derive("keyward/signing-key-encryption/v1");
    Ok(LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).map_err(|_| ServiceError::Crypto("bad sealing key".into()))?))
}

/// base64(nonce ‖ ciphertext ‖ tag), with the kid as associated data so rows cannot be swapped.
fn seal(key: &LessSafeKey, kid: &str, plain: &[u8]) -> Result<String, ServiceError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| ServiceError::Crypto("no randomness".into()))?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut buf)
        .map_err(|_| ServiceError::Crypto("sealing failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(STANDARD.encode(out))
}

fn open(key: &LessSafeKey, kid: &str, sealed: &str) -> Result<Vec<u8>, ServiceError> {
    let wrong = || ServiceError::Crypto(format!("cannot decrypt signing key {kid}: is this the master key it was created with?"));
    let bytes = STANDARD.decode(sealed).map_err(|_| wrong())?;
    if bytes.len() < NONCE_LEN {
        return Err(wrong());
    }
    let (nonce, rest) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
    let mut buf = rest.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf).map_err(|_| wrong())?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;

    fn ring_on_fresh_db(now: i64) -> (keyward_store::Pool, KeyRing) {
        let file = std::env::temp_dir().join(format!("kw-keys-{}.db", uuid::Uuid::new_v4()));
        let pool = keyward_store::connect(&format!("sqlite://{}", file.display()), 2).expect("pool");
        let mut conn = pool.get().expect("conn");
        keyward_store::run_migrations(&mut conn).expect("migrations");
        let master = MasterKey::from_base64(&B64.encode([9u8; 32])).expect("key");
        let ring = KeyRing::load_or_create(&mut conn, &master, now).expect("ring");
        drop(conn);
        (pool, ring)
    }

    fn kid_of(jws: &str) -> String {
        jsonwebtoken::decode_header(jws).expect("header").kid.expect("kid")
    }

    #[test]
    fn f6_scheduled_rotation_publishes_first_switches_later_and_keeps_the_old_key_published() {
        let t0 = 1_000_000;
        let (pool, ring) = ring_on_fresh_db(t0);
        let mut conn = pool.get().expect("conn");
        let claims = serde_json::json!({ "sub": "x" });
        let old = kid_of(&ring.sign(t0, SigningAlg::Es256, "JWT", &claims).expect("signs"));
        assert!(ring.due_for_rotation(t0 + 99, 100).is_empty(), "not due before its age");
        let due = ring.due_for_rotation(t0 + 100, 100);
        assert_eq!(due, SigningAlg::ALL.to_vec(), "every algorithm's key is due at its age");

        let new = ring.rotate(&mut conn, SigningAlg::Es256, t0 + 100, 60, 3600).expect("rotates").expect("a new key");
        assert!(ring.reload(&mut conn, t0 + 100).expect("reload"), "the set changed");
        assert!(ring.jwks_json().contains(&new), "published at once");
        assert!(!ring.due_for_rotation(t0 + 120, 100).contains(&SigningAlg::Es256), "a successor is waiting: not due again");
        assert_eq!(kid_of(&ring.sign(t0 + 159, SigningAlg::Es256, "JWT", &claims).expect("signs")), old, "old key until activation");
        assert_eq!(kid_of(&ring.sign(t0 + 160, SigningAlg::Es256, "JWT", &claims).expect("signs")), new, "new key from activation");

        // The old key stays published for the longest token lifetime, then leaves the JWKS.
        ring.reload(&mut conn, t0 + 160 + 3599).expect("reload");
        assert!(ring.jwks_json().contains(&old), "verifies tokens it signed until they expired");
        ring.reload(&mut conn, t0 + 160 + 3600).expect("reload");
        assert!(!ring.jwks_json().contains(&old), "unpublished after every token it signed expired");
    }

    #[test]
    fn eddsa_keys_publish_an_okp_jwk_and_verify_their_own_signatures() {
        let (_pool, ring) = ring_on_fresh_db(5);
        let jwks: serde_json::Value = serde_json::from_str(&ring.jwks_json()).expect("json");
        let okp = jwks["keys"].as_array().expect("keys").iter().find(|k| k["alg"] == "EdDSA").expect("an EdDSA key").clone();
        assert_eq!((okp["kty"].as_str(), okp["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
        let token = ring.sign(5, SigningAlg::EdDsa, "JWT", &serde_json::json!({ "sub": "s", "exp": 4_000_000_000i64 })).expect("signs");
        let mut v = Validation::new(Algorithm::EdDSA);
        v.required_spec_claims.clear();
        let back: Option<serde_json::Value> = ring.verify(&token, v);
        assert_eq!(back.expect("verifies")["sub"], "s");
    }
}
