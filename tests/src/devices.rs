//! A device as a test client holds it, with keys signed the way `docs/e2ee.md` says (a test
//! Ed25519 key from a seed; the Curve25519 keys are made-up bytes: the server never uses them).

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Map, Value};

use crate::{Member, Stack};

/// A device as a test client holds it: the session's token, its id, and its signing key.
pub struct TestDevice {
    pub user_id: String,
    pub device_id: String,
    pub token: String,
    signing: SigningKey,
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Keys sorted, no whitespace: what `docs/e2ee.md` calls canonical JSON.
fn canonical(fields: &[(&str, Value)]) -> String {
    let map: Map<String, Value> = fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Value::Object(map).to_string()
}

impl TestDevice {
    pub fn new(user_id: &str, device_id: &str, token: &str, seed: u8) -> Self {
        Self {
            user_id: user_id.to_owned(),
            device_id: device_id.to_owned(),
            token: token.to_owned(),
            signing: SigningKey::from_bytes(&[seed; 32]),
        }
    }

    pub fn ed25519(&self) -> String {
        b64(self.signing.verifying_key().as_bytes())
    }

    pub fn sign(&self, text: &str) -> String {
        b64(&self.signing.sign(text.as_bytes()).to_bytes())
    }

    pub fn identity_keys(&self) -> Value {
        let curve25519 = b64(&[self.signing.as_bytes()[0] ^ 0x55; 32]);
        let text = canonical(&[
            ("curve25519", json!(curve25519)),
            ("device_id", json!(self.device_id)),
            ("ed25519", json!(self.ed25519())),
            ("type", json!("parley.device_keys.v1")),
            ("user_id", json!(self.user_id)),
        ]);
        json!({"curve25519": curve25519, "ed25519": self.ed25519(), "signature": self.sign(&text)})
    }

    pub fn one_time_key(&self, key_id: &str, fallback: bool) -> Value {
        let mut raw = [0u8; 32];
        raw[..key_id.len().min(32)].copy_from_slice(&key_id.as_bytes()[..key_id.len().min(32)]);
        self.signed_key(key_id, &raw, fallback)
    }

    pub fn signed_key(&self, key_id: &str, raw: &[u8; 32], fallback: bool) -> Value {
        let curve25519 = b64(raw);
        let text = canonical(&[
            ("curve25519", json!(curve25519)),
            ("device_id", json!(self.device_id)),
            ("fallback", json!(fallback)),
            ("key_id", json!(key_id)),
            ("type", json!("parley.one_time_key.v1")),
            ("user_id", json!(self.user_id)),
        ]);
        json!({"key_id": key_id, "curve25519": curve25519, "signature": self.sign(&text)})
    }

    pub fn upload(&self, one_time_keys: usize) -> Value {
        let keys: Vec<Value> = (0..one_time_keys).map(|i| self.one_time_key(&format!("k{i}"), false)).collect();
        json!({
            "display_name": "laptop",
            "identity_keys": self.identity_keys(),
            "one_time_keys": keys,
            "fallback_key": self.one_time_key("fb", true),
        })
    }

    pub async fn publish(&self, stack: &Stack, one_time_keys: usize) -> Result<Value> {
        let (status, body) =
            stack.put(&format!("/keys/devices/{}", self.device_id), &self.token, &self.upload(one_time_keys)).await?;
        ensure!(status == 200, "publish keys: {status} {body}");
        Ok(body)
    }

    pub fn member(&self) -> Member {
        Member { id: self.user_id.clone(), token: self.token.clone() }
    }
}

/// Registers a user and publishes its first device's keys.
pub async fn device(stack: &Stack, name: &str, seed: u8, one_time_keys: usize) -> Result<TestDevice> {
    let registered = stack.register(name, &crate::unique_email(name)).await?;
    let device = TestDevice::new(
        registered["user"]["id"].as_str().context("user id")?,
        registered["device_id"].as_str().context("register answers device_id")?,
        registered["access_token"].as_str().context("token")?,
        seed,
    );
    device.publish(stack, one_time_keys).await?;
    Ok(device)
}
