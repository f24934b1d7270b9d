//! Join tokens: EdDSA JWTs the api signs (`aud: parley-sfu`, `typ: sfu_join`), checked here with
//! the api's public key from its JWKS. A key we do not know yet (the api rotated it) makes us
//! fetch the set again.

use std::sync::RwLock;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use uuid::Uuid;

const AUDIENCE: &str = "parley-sfu";
const JOIN_TOKEN_TYPE: &str = "sfu_join";

#[derive(Debug, Clone, Deserialize)]
pub struct JoinClaims {
    pub sub: Uuid,
    pub call: Uuid,
    /// `audio` or `video`: an audio participant neither publishes nor receives video.
    pub kind: String,
    /// The api session the token was issued to (revoking it voids the token).
    pub sid: Uuid,
    /// The token's id: it is admitted once.
    pub jti: Uuid,
    /// When it was issued, in milliseconds (compared with when a participant's right ended).
    pub iat_ms: i64,
    pub exp: i64,
    /// The SFU node the api placed the call on: another node refuses the token.
    #[serde(default)]
    pub node: Option<String>,
    typ: String,
}

impl JoinClaims {
    /// Whether the participant may send and receive video.
    pub fn allows_video(&self) -> bool {
        self.kind == "video"
    }

    #[cfg(test)]
    pub(crate) fn for_tests(call: Uuid, sub: Uuid, sid: Uuid, iat_ms: i64, jti: u128) -> Self {
        Self {
            sub,
            call,
            kind: "video".into(),
            sid,
            jti: Uuid::from_u128(jti),
            iat_ms,
            exp: i64::MAX / 1000,
            node: None,
            typ: JOIN_TOKEN_TYPE.into(),
        }
    }
}

/// Why a token was refused; the reason goes back to the client in the close frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("missing join token")]
    Missing,
    #[error("join token expired")]
    Expired,
    #[error("invalid join token")]
    Invalid,
    #[error("join token is for another call")]
    WrongCall,
    /// The api placed the call on another node (this one was dead to it, or never had it).
    #[error("join token is for another SFU node")]
    WrongNode,
    #[error("the key that signs join tokens is not available yet")]
    NoKey,
    #[error("join token already used")]
    Used,
    /// The right it gave ended (the call ended, the participant left or was removed, logout).
    #[error("join token revoked: {0}")]
    Revoked(&'static str),
    /// Just started: still reading whose rights ended before (a moment).
    #[error("the SFU is starting; try again in a moment")]
    NotReady,
    /// This node cannot reach the directory: the api is moving its calls to another node.
    #[error("this SFU node lost contact with Parley; join again to be sent to another")]
    CutOff,
}

pub struct TokenVerifier {
    jwks_url: String,
    validation: Validation,
    keys: RwLock<Vec<(Option<String>, DecodingKey)>>,
    http: reqwest::Client,
    /// This node's id, when it is in the SFU directory.
    node: Option<String>,
}

impl TokenVerifier {
    pub fn new(jwks_url: String, issuer: &str) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "sub", "aud", "iss"]);
        validation.leeway = 0;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Self { jwks_url, validation, keys: RwLock::new(Vec::new()), http, node: None }
    }

    /// Refuses tokens naming another node.
    pub fn for_node(mut self, node_id: &str) -> Self {
        self.node = Some(node_id.to_owned());
        self
    }

    /// Fetches the api's key set (retried by callers until the api is up).
    pub(crate) async fn refresh(&self) -> anyhow::Result<usize> {
        let set: JwkSet = self.http.get(&self.jwks_url).send().await?.error_for_status()?.json().await?;
        Ok(self.set_keys(&set))
    }

    /// Replaces the keys with `set`'s usable ones; how many there are. (Apart from `refresh` so
    /// that the fuzz targets can give the verifier a key without an api to fetch it from.)
    pub fn set_keys(&self, set: &JwkSet) -> usize {
        let keys: Vec<(Option<String>, DecodingKey)> = set
            .keys
            .iter()
            .filter_map(|jwk| DecodingKey::from_jwk(jwk).ok().map(|key| (jwk.common.key_id.clone(), key)))
            .collect();
        let count = keys.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        count
    }

    fn check(&self, token: &str, kid: Option<&str>) -> Option<Result<JoinClaims, TokenError>> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let (_, key) = keys.iter().find(|(id, _)| kid.is_none() || id.as_deref() == kid)?;
        Some(match jsonwebtoken::decode::<JoinClaims>(token, key, &self.validation) {
            Ok(data) if data.claims.typ == JOIN_TOKEN_TYPE => Ok(data.claims),
            Ok(_) => Err(TokenError::Invalid),
            Err(error) => match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Err(TokenError::Expired),
                _ => Err(TokenError::Invalid),
            },
        })
    }

    /// The token's claims, if it is a valid join token (for `call`, when the client names one).
    pub async fn verify(&self, token: Option<&str>, call: Option<Uuid>) -> Result<JoinClaims, TokenError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenError::Missing)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let kid = header.kid.as_deref();
        let claims = match self.check(token, kid) {
            Some(result) => result?,
            None => {
                // Unknown key: perhaps the api has a new one.
                if let Err(error) = self.refresh().await {
                    tracing::warn!(%error, "could not fetch the api's JWKS");
                    return Err(TokenError::NoKey);
                }
                self.check(token, kid).ok_or(TokenError::Invalid)??
            }
        };
        if call.is_some_and(|c| c != claims.call) {
            return Err(TokenError::WrongCall);
        }
        if claims.node.is_some() && self.node.is_some() && claims.node != self.node {
            return Err(TokenError::WrongNode);
        }
        Ok(claims)
    }
}
