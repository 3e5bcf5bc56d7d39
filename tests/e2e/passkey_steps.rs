//! Steps shared by the passkey suite: Keyward with an RP, a person signed in by email,
//! WebAuthn ceremonies over HTTP answered by webauthn-rs' software authenticator, and the
//! raw pieces the negative tests forge (client data from another origin, a `none`
//! attestation for a known credential, an expired ceremony).

use crate::common::*;
use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyward_testkit::app::*;
use keyward_testkit::browser::Browser;
use sha2::{Digest as _, Sha256};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackendHashedClientData, WebauthnAuthenticator};
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url};
use webauthn_rs_proto::{AllowCredentials, ResidentKeyRequirement};

/// An origin that is not Keyward's (CHECKLIST R3, A4).
pub const EVIL_ORIGIN: &str = "https://evil.example";

/// What Keyward answers any answer that does not verify: nothing says which check failed.
pub const NOT_ACCEPTED: (u16, Option<&str>) = (400, Some("passkey_not_accepted"));
/// What Keyward answers an unknown, expired, used or foreign ceremony.
pub const STALE_CHALLENGE: (u16, Option<&str>) = (400, Some("stale_challenge"));

const AUTHENTICATOR_TIMEOUT_MS: u32 = 60_000;

/// The status and JSON `error` code of a response.
pub fn error_of(resp: &(u16, serde_json::Value)) -> (u16, Option<&str>) {
    (resp.0, resp.1["error"].as_str())
}

pub async fn post_json(browser: &Browser, url: &str, origin: &str, body: serde_json::Value) -> anyhow::Result<(u16, serde_json::Value)> {
    let resp = browser.http.post(url).header("Origin", origin).json(&body).send().await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or_default()))
}

/// A running Keyward and the confidential test client as its RP.
pub struct World {
    pub app: TestApp,
    pub rp: Rp,
    /// The issuer, which is the only origin Keyward accepts.
    pub origin: String,
}

/// A registration ceremony as `/account/passkeys/register/start` opened it.
pub struct RegistrationStart {
    pub ceremony: String,
    pub options: CreationChallengeResponse,
}

/// A passkey Keyward stored, as the browser needs it to sign in.
pub struct Registered {
    pub credential: RegisterPublicKeyCredential,
    /// The WebAuthn user handle of its owner.
    pub user_handle: Vec<u8>,
}

/// A username-less sign-in ceremony opened for a login attempt in a fresh browser.
pub struct SignIn {
    pub browser: Browser,
    pub attempt: String,
    pub ceremony: String,
    pub options: RequestChallengeResponse,
}

impl World {
    pub async fn start() -> anyhow::Result<World> {
        let app = spawn(AppOptions::default()).await?;
        let rp = rp(&app, CLIENT_ID, Some(CLIENT_SECRET), CLIENT_REDIRECT).await?;
        let origin = app.issuer.clone();
        Ok(World { app, rp, origin })
    }

    /// A browser in which `email` has signed in through the RP.
    pub async fn signed_in(&self, email: &str) -> anyhow::Result<Browser> {
        let browser = Browser::new()?;
        sign_in_by_email(&self.app, &browser, &auth_request(&self.rp).url, email).await?;
        Ok(browser)
    }

    /// POSTs JSON to `path` with Keyward's own `Origin`.
    pub async fn post(&self, browser: &Browser, path: &str, body: serde_json::Value) -> anyhow::Result<(u16, serde_json::Value)> {
        post_json(browser, &self.app.url(path), &self.origin, body).await
    }

    pub async fn start_registration(&self, browser: &Browser) -> anyhow::Result<RegistrationStart> {
        let (status, start) = self.post(browser, "/account/passkeys/register/start", serde_json::json!({})).await?;
        if status != 200 {
            bail!("registration start answered {status}: {start}");
        }
        let ceremony = start["ceremony"].as_str().context("no ceremony")?.to_owned();
        Ok(RegistrationStart { ceremony, options: serde_json::from_value(start["options"].clone())? })
    }

    pub async fn finish_registration(
        &self,
        browser: &Browser,
        ceremony: &str,
        credential: &RegisterPublicKeyCredential,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        self.post(browser, "/account/passkeys/register/finish", serde_json::json!({ "ceremony": ceremony, "credential": credential })).await
    }

    /// Registers a new passkey of `authenticator` for the person signed in in `browser`.
    pub async fn register(&self, browser: &Browser, authenticator: &mut SoftPasskey) -> anyhow::Result<Registered> {
        let start = self.start_registration(browser).await?;
        let credential = authenticator.do_registration(Url::parse(&self.origin)?, start.for_soft_authenticator())?;
        let (status, body) = self.finish_registration(browser, &start.ceremony, &credential).await?;
        if status != 201 {
            bail!("registration finish answered {status}: {body}");
        }
        Ok(Registered { credential, user_handle: start.options.public_key.user.id.to_vec() })
    }

    /// How many passkeys the person signed in in `browser` has.
    pub async fn passkey_count(&self, browser: &Browser) -> anyhow::Result<usize> {
        let list: serde_json::Value = browser.http.get(self.app.url("/account/passkeys")).send().await?.json().await?;
        Ok(list.as_array().context("the passkey list is not an array")?.len())
    }

    /// Keyward with one passkey registered for a person (by a software authenticator that
    /// verifies the user).
    pub async fn with_a_passkey() -> anyhow::Result<(World, SoftPasskey, Registered)> {
        let world = World::start().await?;
        let owner = world.signed_in("owner@example.com").await?;
        let mut authenticator = SoftPasskey::new(true);
        let passkey = world.register(&owner, &mut authenticator).await?;
        Ok((world, authenticator, passkey))
    }

    /// Opens a login attempt through the RP in a fresh browser and starts a passkey sign-in.
    pub async fn start_sign_in(&self) -> anyhow::Result<SignIn> {
        let browser = Browser::new()?;
        let (_, attempt, _) = open_login(&self.app, &browser, &auth_request(&self.rp).url).await?;
        let (status, start) = self.post(&browser, "/login/passkey/start", serde_json::json!({ "attempt": attempt })).await?;
        if status != 200 {
            bail!("sign-in start answered {status}: {start}");
        }
        let ceremony = start["ceremony"].as_str().context("no ceremony")?.to_owned();
        Ok(SignIn { browser, attempt, ceremony, options: serde_json::from_value(start["options"].clone())? })
    }

    pub async fn finish_sign_in(&self, sign_in: &SignIn, assertion: &PublicKeyCredential) -> anyhow::Result<(u16, serde_json::Value)> {
        let body = serde_json::json!({ "attempt": sign_in.attempt, "ceremony": sign_in.ceremony, "credential": assertion });
        self.post(&sign_in.browser, "/login/passkey/finish", body).await
    }

    /// The audit log's event kinds, oldest first (gray-box: the app's database).
    pub async fn audit_kinds(&self) -> anyhow::Result<Vec<String>> {
        let url = self.app.database_url.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
            let pool = keyward_store::connect(&url, 1)?;
            let events = keyward_store::repo::audit::latest(&mut *pool.get()?, None, 1000)?;
            Ok(events.into_iter().rev().map(|e| e.kind).collect())
        })
        .await?
    }

    /// Moves a ceremony's expiry into the past (gray-box: the app's database), as if its
    /// five minutes had gone by.
    pub async fn expire_ceremony(&self, id: &str, kind: &str) -> anyhow::Result<()> {
        let (url, id, kind) = (self.app.database_url.clone(), id.to_owned(), kind.to_owned());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let pool = keyward_store::connect(&url, 1)?;
            let mut conn = pool.get()?;
            // Taken with the earliest possible clock it is always live; put back expired.
            let mut row = keyward_store::repo::passkeys::take_ceremony(&mut conn, &id, &kind, i64::MIN)?.context("no such ceremony")?;
            row.expires_at = 0;
            keyward_store::repo::passkeys::save_ceremony(&mut conn, &row)?;
            Ok(())
        })
        .await?
    }
}

impl RegistrationStart {
    /// The options as the software authenticator can answer them: it makes no resident keys.
    pub fn for_soft_authenticator(&self) -> CreationChallengeResponse {
        let mut ccr = self.options.clone();
        if let Some(s) = ccr.public_key.authenticator_selection.as_mut() {
            s.resident_key = Some(ResidentKeyRequirement::Discouraged);
            s.require_resident_key = false;
        }
        ccr
    }
}

impl SignIn {
    /// The options as a browser uses them once the person picks `passkey` (a discoverable
    /// credential: the server named no account).
    pub fn options_for(&self, passkey: &Registered) -> RequestChallengeResponse {
        let mut rcr = self.options.clone();
        rcr.public_key.allow_credentials =
            vec![AllowCredentials { type_: "public-key".into(), id: passkey.credential.raw_id.clone(), transports: None }];
        rcr
    }
}

/// The browser's answer to sign-in `options` with `passkey`, from Keyward's origin.
pub fn assertion(
    authenticator: &mut SoftPasskey,
    origin: &str,
    options: RequestChallengeResponse,
    passkey: &Registered,
) -> anyhow::Result<PublicKeyCredential> {
    let mut assertion = authenticator.do_authentication(Url::parse(origin)?, options)?;
    assertion.response.user_handle = Some(passkey.user_handle.clone());
    Ok(assertion)
}

/// A correctly signed answer to sign-in `options` whose client data names `client_origin`
/// (a browser on another site; the authenticator signs whatever client data it is given).
pub fn assertion_from_origin(
    authenticator: &mut SoftPasskey,
    client_origin: &str,
    options: RequestChallengeResponse,
    passkey: &Registered,
) -> anyhow::Result<PublicKeyCredential> {
    let client_data = client_data_json("webauthn.get", &options.public_key.challenge, client_origin);
    let mut assertion = AuthenticatorBackendHashedClientData::perform_auth(
        authenticator,
        Sha256::digest(&client_data).to_vec(),
        options.public_key,
        AUTHENTICATOR_TIMEOUT_MS,
    )?;
    assertion.response.client_data_json = client_data;
    assertion.response.user_handle = Some(passkey.user_handle.clone());
    Ok(assertion)
}

/// A correctly signed (packed self-attestation) answer to registration `options` whose
/// client data names `client_origin`.
pub fn credential_from_origin(
    authenticator: &mut SoftPasskey,
    client_origin: &str,
    options: CreationChallengeResponse,
) -> anyhow::Result<RegisterPublicKeyCredential> {
    let client_data = client_data_json("webauthn.create", &options.public_key.challenge, client_origin);
    let mut credential = AuthenticatorBackendHashedClientData::perform_register(
        authenticator,
        Sha256::digest(&client_data).to_vec(),
        options.public_key,
        AUTHENTICATOR_TIMEOUT_MS,
    )?;
    credential.response.client_data_json = client_data;
    Ok(credential)
}

/// An answer to registration `options` that presents `credential` again: its authenticator
/// data (credential id, public key, flags) unchanged, under a `none` attestation, which
/// signs nothing, and client data for the new challenge from Keyward's origin.
pub fn same_credential_again(
    credential: &RegisterPublicKeyCredential,
    options: &CreationChallengeResponse,
    origin: &str,
) -> anyhow::Result<RegisterPublicKeyCredential> {
    let mut again = credential.clone();
    again.response.attestation_object = none_attestation(&auth_data_of(&credential.response.attestation_object)?)?;
    again.response.client_data_json = client_data_json("webauthn.create", &options.public_key.challenge, origin);
    Ok(again)
}

fn client_data_json(type_: &str, challenge: &[u8], origin: &str) -> Vec<u8> {
    serde_json::json!({ "type": type_, "challenge": URL_SAFE_NO_PAD.encode(challenge), "origin": origin }).to_string().into_bytes()
}

/// The `authData` byte string of a CBOR attestation object.
fn auth_data_of(attestation_object: &[u8]) -> anyhow::Result<Vec<u8>> {
    let key = b"\x68authData";
    let at = attestation_object.windows(key.len()).position(|w| w == key).context("no authData in the attestation object")? + key.len();
    let (len, start) = match attestation_object.get(at..at + 3) {
        Some([0x58, n, _]) => (usize::from(*n), at + 2),
        Some([0x59, hi, lo]) => (usize::from(u16::from_be_bytes([*hi, *lo])), at + 3),
        other => bail!("authData is not a byte string of 24..65535 bytes: {other:?}"),
    };
    Ok(attestation_object.get(start..start + len).context("authData is cut short")?.to_vec())
}

/// `{"fmt": "none", "attStmt": {}, "authData": auth_data}` in CBOR.
fn none_attestation(auth_data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![0xa3, 0x63];
    out.extend_from_slice(b"fmt");
    out.push(0x64);
    out.extend_from_slice(b"none");
    out.push(0x67);
    out.extend_from_slice(b"attStmt");
    out.push(0xa0);
    out.push(0x68);
    out.extend_from_slice(b"authData");
    match u8::try_from(auth_data.len()) {
        Ok(n) => out.extend_from_slice(&[0x58, n]),
        Err(_) => {
            out.push(0x59);
            out.extend_from_slice(&u16::try_from(auth_data.len())?.to_be_bytes());
        }
    }
    out.extend_from_slice(auth_data);
    Ok(out)
}

// A forging authenticator (CHECKLIST R1, R4–R6, R8–R11, A6): an ECDSA key of its own, so a
// test can sign any authenticator data (rpIdHash, flags, credential id) with any client data,
// and register it under a `none` attestation, which signs nothing.

/// Authenticator data flags (WebAuthn §6.1): user present, user verified, backup eligible,
/// backed up; attested credential data follows.
pub const UP: u8 = 0x01;
pub const UV: u8 = 0x04;
pub const BE: u8 = 0x08;
pub const BS: u8 = 0x10;
const AT: u8 = 0x40;

pub struct Forger {
    key: aws_lc_rs::signature::EcdsaKeyPair,
    /// COSE `alg` and `crv` of the key: ES256/P-256 (-7, 1) or ES512/P-521 (-36, 3).
    alg_crv: (i8, u8),
    pub cred_id: Vec<u8>,
    counter: u32,
}

impl Forger {
    /// An ES256 (P-256) key with a random 16-byte credential id.
    pub fn p256() -> anyhow::Result<Forger> {
        Forger::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING, (-7, 1))
    }

    /// An ES512 (P-521) key: an algorithm Keyward's `pubKeyCredParams` do not offer.
    pub fn p521() -> anyhow::Result<Forger> {
        Forger::new(&aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING, (-36, 3))
    }

    fn new(alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm, alg_crv: (i8, u8)) -> anyhow::Result<Forger> {
        let key = aws_lc_rs::signature::EcdsaKeyPair::generate(alg).map_err(|_| anyhow::anyhow!("no key"))?;
        Ok(Forger { key, alg_crv, cred_id: rand::random::<[u8; 16]>().to_vec(), counter: 0 })
    }

    /// The public key as a COSE_Key: {1: 2 (EC2), 3: alg, -1: crv, -2: x, -3: y}.
    fn cose_key(&self) -> Vec<u8> {
        use aws_lc_rs::signature::KeyPair as _;
        let point = &self.key.public_key().as_ref()[1..];
        let (x, y) = point.split_at(point.len() / 2);
        let alg = match self.alg_crv.0 {
            -7 => vec![0x26],
            a => vec![0x38, u8::try_from(-1 - i16::from(a)).unwrap_or(0)],
        };
        let mut out = vec![0xa5, 0x01, 0x02, 0x03];
        out.extend(alg);
        out.extend([0x20, self.alg_crv.1]);
        for (label, coord) in [(0x21, x), (0x22, y)] {
            out.extend([label, 0x58, u8::try_from(coord.len()).unwrap_or(0)]);
            out.extend_from_slice(coord);
        }
        out
    }

    /// Authenticator data for `rp_id` with `flags`, the counter, and (if `attested`) the
    /// credential id and public key.
    pub fn auth_data(&self, rp_id: &str, flags: u8, attested: bool) -> Vec<u8> {
        let mut out = Sha256::digest(rp_id.as_bytes()).to_vec();
        out.push(if attested { flags | AT } else { flags });
        out.extend(self.counter.to_be_bytes());
        if attested {
            out.extend([0u8; 16]);
            out.extend(u16::try_from(self.cred_id.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend(&self.cred_id);
            out.extend(self.cose_key());
        }
        out
    }

    /// A registration answer: `auth_data` under a `none` attestation, with `client_data`.
    pub fn registration(&self, auth_data: &[u8], client_data: &[u8]) -> anyhow::Result<RegisterPublicKeyCredential> {
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        Ok(serde_json::from_value(serde_json::json!({
            "id": b64(&self.cred_id), "rawId": b64(&self.cred_id), "type": "public-key", "extensions": {},
            "response": { "attestationObject": b64(&none_attestation(auth_data)?), "clientDataJSON": b64(client_data) },
        }))?)
    }

    /// A sign-in answer with `flags` and `client_data`, signed (the counter goes up by one).
    pub fn assertion(&mut self, rp_id: &str, flags: u8, client_data: &[u8], user_handle: &[u8]) -> anyhow::Result<PublicKeyCredential> {
        self.counter += 1;
        let auth_data = self.auth_data(rp_id, flags, false);
        let signed = [auth_data.as_slice(), &Sha256::digest(client_data)].concat();
        let sig = self.key.sign(&aws_lc_rs::rand::SystemRandom::new(), &signed).map_err(|_| anyhow::anyhow!("cannot sign"))?;
        let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        Ok(serde_json::from_value(serde_json::json!({
            "id": b64(&self.cred_id), "rawId": b64(&self.cred_id), "type": "public-key", "extensions": {},
            "response": { "authenticatorData": b64(&auth_data), "clientDataJSON": b64(client_data),
                          "signature": b64(sig.as_ref()), "userHandle": b64(user_handle) },
        }))?)
    }
}

/// Client data of `type_` for `challenge` from `origin`, with the members of `extra` added.
pub fn client_data_with(type_: &str, challenge: &[u8], origin: &str, extra: serde_json::Value) -> Vec<u8> {
    let mut data = serde_json::json!({ "type": type_, "challenge": URL_SAFE_NO_PAD.encode(challenge), "origin": origin });
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    data.to_string().into_bytes()
}
