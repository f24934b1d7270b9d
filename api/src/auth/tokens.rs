//! Access tokens (EdDSA-signed JWTs) and opaque rotating refresh tokens.
//!
//! Access tokens are signed with an Ed25519 key so that other services (the SFU, future workers)
//! verify them with the public key alone, published at `/.well-known/jwks.json`.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const KEY_FILE: &str = "jwt-ed25519.pem";
const ACCESS_TOKEN_TYPE: &str = "access";
const SFU_JOIN_TOKEN_TYPE: &str = "sfu_join";
/// The `aud` of join tokens: only the SFU accepts them.
pub const SFU_AUDIENCE: &str = "parley-sfu";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key is not a PKCS#8 PEM Ed25519 key: {0}")]
    Invalid(String),
    #[error("signing key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The session (refresh-token family) the token was issued under.
    pub sid: Uuid,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

/// Which room a join token opens: the call, what it carries, and the SFU node it is on.
#[derive(Debug, Clone, Copy)]
pub struct SfuRoom<'a> {
    pub call_id: Uuid,
    pub kind: &'a str,
    pub node: Option<&'a str>,
}

/// The claims of an SFU join token: who may join which call's room, until when. The SFU checks
/// them with the public key from `/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SfuJoinClaims {
    /// The user.
    pub sub: Uuid,
    /// The call, which is the SFU's room.
    pub call: Uuid,
    /// `audio` or `video`: what the participant may publish.
    pub kind: String,
    /// The session the token was issued to: revoking it (logout) ends the token's rights.
    pub sid: Uuid,
    /// This token's id: the SFU admits each token once.
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    /// `iat` in milliseconds: the SFU compares it with when a right ended, which can be within
    /// the same second as when it began again.
    pub iat_ms: i64,
    pub exp: i64,
    /// The SFU node the call is placed on (the SFU refuses tokens for other nodes); absent when
    /// no node was in the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub typ: String,
}

/// Access tokens whose signature checked out, kept so that a client's every request does not
/// repeat an Ed25519 verification (the costliest step of a small request). Expiry is still
/// checked on each use.
const VERIFIED_TOKENS_KEPT: usize = 20_000;

/// A public key tokens may also be signed with: during a rotation, the key before (or after)
/// the one this replica signs with.
struct AcceptedKey {
    key_id: String,
    public_key: [u8; 32],
    decoding: DecodingKey,
}

impl AcceptedKey {
    fn new(public_key: [u8; 32]) -> Self {
        Self { key_id: key_id(&public_key), decoding: DecodingKey::from_ed_der(&public_key), public_key }
    }
}

/// A key's id in token headers and the JWKS: the first 8 bytes of its SHA-256, in hex.
fn key_id(public_key: &[u8; 32]) -> String {
    hex(&Sha256::digest(public_key)[..8])
}

pub struct TokenKeys {
    verified: std::sync::Mutex<HashMap<String, AccessClaims>>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Verified too, and published in the JWKS (`PARLEY_JWT_ACCEPTED_PUBLIC_KEYS`).
    accepted: Vec<AcceptedKey>,
    validation: Validation,
    public_key: [u8; 32],
    key_id: String,
    issuer: String,
    access_ttl: Duration,
}

impl TokenKeys {
    pub fn from_pem(pem: &str, issuer: &str, access_ttl: Duration) -> Result<Self, KeyError> {
        let signing = SigningKey::from_pkcs8_pem(pem).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Self::from_signing_key(&signing, issuer, access_ttl)
    }

    fn from_signing_key(signing: &SigningKey, issuer: &str, access_ttl: Duration) -> Result<Self, KeyError> {
        let der = signing.to_pkcs8_der().map_err(|e| KeyError::Invalid(e.to_string()))?;
        let public_key = signing.verifying_key().to_bytes();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        // We issue and verify on clocks in the same cluster; a token is dead when it says so.
        validation.leeway = 0;
        Ok(Self {
            verified: std::sync::Mutex::new(HashMap::new()),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public_key),
            accepted: Vec::new(),
            validation,
            key_id: key_id(&public_key),
            public_key,
            issuer: issuer.to_owned(),
            access_ttl,
        })
    }

    /// Uses the configured key, or the one kept in `data_dir` (generating it on first start).
    pub fn load_or_generate(
        configured_pem: Option<&str>,
        data_dir: &Path,
        issuer: &str,
        access_ttl: Duration,
    ) -> Result<Self, KeyError> {
        if let Some(pem) = configured_pem {
            return Self::from_pem(pem, issuer, access_ttl);
        }
        let path = data_dir.join(KEY_FILE);
        let io = |source| KeyError::Io { path: path.display().to_string(), source };
        match std::fs::read_to_string(&path) {
            Ok(pem) => Self::from_pem(&pem, issuer, access_ttl),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io)?;
                let mut seed = [0u8; 32];
                OsRng.fill_bytes(&mut seed);
                let signing = SigningKey::from_bytes(&seed);
                let pem = signing
                    .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                    .map_err(|e| KeyError::Invalid(e.to_string()))?;
                write_private_file(&path, pem.as_bytes()).map_err(io)?;
                tracing::info!(path = %path.display(), "generated a new access-token signing key");
                Self::from_signing_key(&signing, issuer, access_ttl)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Also accepts tokens signed with the keys of `pems` (SPKI "PUBLIC KEY" PEM blocks, one after
    /// another, as `openssl pkey -pubout` writes them), and lists them in the JWKS: a rotation
    /// then logs nobody out and no replica refuses another's tokens (see k8s/README.md).
    pub fn accepting(mut self, pems: &str) -> Result<Self, KeyError> {
        const END: &str = "-----END PUBLIC KEY-----";
        for block in pems.split_inclusive(END).map(str::trim).filter(|b| !b.is_empty()) {
            let key = VerifyingKey::from_public_key_pem(block).map_err(|e| KeyError::Invalid(e.to_string()))?;
            let accepted = AcceptedKey::new(key.to_bytes());
            if accepted.key_id != self.key_id && self.accepted.iter().all(|k| k.key_id != accepted.key_id) {
                self.accepted.push(accepted);
            }
        }
        Ok(self)
    }

    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    pub fn issue_access(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = AccessClaims {
            sub: user_id,
            sid: session_id,
            iss: self.issuer.clone(),
            iat: now.timestamp(),
            exp: now.timestamp() + self.access_ttl.as_secs() as i64,
            typ: ACCESS_TOKEN_TYPE.to_owned(),
        };
        self.sign(&claims)
    }

    /// An EdDSA JWT of `claims`, naming our key.
    fn sign<T: Serialize>(&self, claims: &T) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// A short-lived, single-use token admitting `user_id` (on `session_id`) to `call_id`'s room
    /// on the SFU.
    pub fn issue_sfu_join(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        room: SfuRoom<'_>,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = SfuJoinClaims {
            sub: user_id,
            call: room.call_id,
            kind: room.kind.to_owned(),
            node: room.node.map(str::to_owned),
            sid: session_id,
            jti: Uuid::new_v4(),
            iss: self.issuer.clone(),
            aud: SFU_AUDIENCE.to_owned(),
            iat: now.timestamp(),
            iat_ms: now.timestamp_millis(),
            exp: now.timestamp() + ttl.as_secs() as i64,
            typ: SFU_JOIN_TOKEN_TYPE.to_owned(),
        };
        self.sign(&claims)
    }

    /// Checks signature, issuer, expiry and type.
    pub fn verify_access(&self, token: &str) -> Option<AccessClaims> {
        let now = chrono::Utc::now().timestamp();
        if let Some(claims) = self.verified.lock().unwrap_or_else(|p| p.into_inner()).get(token) {
            return (claims.exp > now).then(|| claims.clone());
        }
        let kid = jsonwebtoken::decode_header(token).ok()?.kid;
        let decoding = match self.accepted.iter().find(|k| kid.as_deref() == Some(k.key_id.as_str())) {
            Some(accepted) => &accepted.decoding,
            None => &self.decoding,
        };
        let data = jsonwebtoken::decode::<AccessClaims>(token, decoding, &self.validation).ok()?;
        if data.claims.typ != ACCESS_TOKEN_TYPE {
            return None;
        }
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_TOKENS_KEPT {
            verified.retain(|_, claims| claims.exp > now);
            if verified.len() >= VERIFIED_TOKENS_KEPT {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), data.claims.clone());
        Some(data.claims)
    }

    /// The public keys (the signing one first, then the accepted ones) as a JSON Web Key Set.
    pub fn jwks(&self) -> serde_json::Value {
        let jwk = |key_id: &str, public_key: &[u8; 32]| {
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": key_id,
                "x": URL_SAFE_NO_PAD.encode(public_key),
            })
        };
        let keys: Vec<serde_json::Value> = std::iter::once(jwk(&self.key_id, &self.public_key))
            .chain(self.accepted.iter().map(|k| jwk(&k.key_id, &k.public_key)))
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Lower-case hex of `bytes` (key ids, token hashes, media checksums).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An opaque refresh token: `<session id>.<256 random bits>`. Only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub session_id: Uuid,
    pub token: String,
}

impl RefreshToken {
    pub fn generate(session_id: Uuid) -> Self {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        Self { session_id, token: format!("{}.{}", session_id.simple(), URL_SAFE_NO_PAD.encode(secret)) }
    }

    pub fn parse(token: &str) -> Option<Self> {
        let (session, secret) = token.trim().split_once('.')?;
        let session_id = Uuid::try_parse(session).ok()?;
        let secret = URL_SAFE_NO_PAD.decode(secret).ok()?;
        (secret.len() == 32).then(|| Self { session_id, token: token.trim().to_owned() })
    }

    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ttl: Duration) -> TokenKeys {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        match TokenKeys::from_signing_key(&signing, "parley", ttl) {
            Ok(keys) => keys,
            Err(e) => panic!("test key: {e}"),
        }
    }

    #[test]
    fn tokens_of_an_accepted_key_verify_during_a_rotation_and_only_then() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let ttl = Duration::from_secs(900);
        let old = keys(ttl);
        let token = old.issue_access(Uuid::from_u128(1), Uuid::from_u128(2), Utc::now()).unwrap_or_default();
        let next = SigningKey::from_bytes(&[9u8; 32]);
        let rotated = TokenKeys::from_signing_key(&next, "parley", ttl).unwrap_or_else(|e| panic!("{e}"));
        assert!(rotated.verify_access(&token).is_none(), "another key's token without accepting it");
        let old_public = SigningKey::from_bytes(&[7u8; 32])
            .verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap_or_else(|e| panic!("{e}"));
        let rotated = rotated.accepting(&format!("{old_public}\n{old_public}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rotated.verify_access(&token).map(|c| c.sub), Some(Uuid::from_u128(1)));
        let jwks = rotated.jwks();
        let kids: Vec<&str> = jwks["keys"].as_array().into_iter().flatten().filter_map(|k| k["kid"].as_str()).collect();
        assert_eq!(kids, [rotated.key_id.as_str(), old.key_id.as_str()], "both keys, the signing one first, once each");
        assert!(keys(ttl).accepting("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----").is_err());
    }

    #[test]
    fn sfu_join_tokens_verify_for_the_sfu_only_and_are_no_access_tokens() {
        let keys = keys(Duration::from_secs(900));
        let (user, call) = (Uuid::from_u128(1), Uuid::from_u128(3));
        let (session, now) = (Uuid::from_u128(2), Utc::now());
        let room = SfuRoom { call_id: call, kind: "video", node: Some("node-a") };
        let token = keys.issue_sfu_join(user, session, room, Duration::from_secs(60), now).unwrap_or_default();
        let again = keys.issue_sfu_join(user, session, room, Duration::from_secs(60), now).unwrap_or_default();
        assert!(keys.verify_access(&token).is_none(), "a join token must not open the API");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[SFU_AUDIENCE]);
        validation.set_issuer(&["parley"]);
        let claims = jsonwebtoken::decode::<SfuJoinClaims>(&token, &keys.decoding, &validation).map(|d| d.claims);
        let claims = claims.unwrap_or_else(|e| panic!("join token: {e}"));
        assert_eq!((claims.sub, claims.call, claims.kind.as_str()), (user, call, "video"));
        assert_eq!(claims.exp - claims.iat, 60);
        assert_eq!((claims.sid, claims.iat_ms), (session, now.timestamp_millis()));
        assert_eq!(claims.node.as_deref(), Some("node-a"));
        let other = jsonwebtoken::decode::<SfuJoinClaims>(&again, &keys.decoding, &validation).map(|d| d.claims.jti);
        assert_ne!(other.ok(), Some(claims.jti), "each join token has its own id");
    }

    #[test]
    fn access_tokens_round_trip_and_reject_tampering() {
        let keys = keys(Duration::from_secs(900));
        let (user, session) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let token = keys.issue_access(user, session, Utc::now()).unwrap_or_default();
        let claims = keys.verify_access(&token);
        assert_eq!(claims.map(|c| (c.sub, c.sid)), Some((user, session)));
        // Flip one character of the payload.
        let mut tampered: Vec<char> = token.chars().collect();
        let middle = token.find('.').unwrap_or(0) + 5;
        tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
        assert!(keys.verify_access(&tampered.into_iter().collect::<String>()).is_none());
        // Another key's token.
        let other =
            TokenKeys::from_signing_key(&SigningKey::from_bytes(&[8u8; 32]), "parley", Duration::from_secs(900));
        let foreign = other.map(|k| k.issue_access(user, session, Utc::now()).unwrap_or_default()).unwrap_or_default();
        assert!(keys.verify_access(&foreign).is_none());
    }

    #[test]
    fn expired_access_tokens_are_rejected() {
        let keys = keys(Duration::from_secs(60));
        let token =
            keys.issue_access(Uuid::from_u128(1), Uuid::from_u128(2), Utc::now() - chrono::Duration::seconds(61));
        assert!(keys.verify_access(&token.unwrap_or_default()).is_none());
    }

    #[test]
    fn a_token_verified_before_is_still_refused_once_it_expires() {
        let keys = keys(Duration::from_secs(60));
        // Issued 59 s ago: valid for about one more second.
        let token = keys
            .issue_access(Uuid::from_u128(1), Uuid::from_u128(2), Utc::now() - chrono::Duration::seconds(59))
            .unwrap_or_default();
        assert!(keys.verify_access(&token).is_some());
        assert!(keys.verify_access(&token).is_some(), "the remembered verification");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert!(keys.verify_access(&token).is_none());
    }

    #[test]
    fn refresh_tokens_parse_back_and_hash_stably() {
        let token = RefreshToken::generate(Uuid::from_u128(5));
        let parsed = RefreshToken::parse(&token.token);
        assert_eq!(parsed.as_ref(), Some(&token));
        assert_eq!(parsed.map(|p| p.hash()), Some(token.hash()));
        assert_ne!(RefreshToken::generate(Uuid::from_u128(5)).hash(), token.hash());
        for bad in ["", "abc", "not-a-uuid.AAAA", &format!("{}.short", Uuid::from_u128(5).simple())] {
            assert!(RefreshToken::parse(bad).is_none(), "{bad}");
        }
    }
}
