//! A signed-in profile, loaded under its lock: the session, the device's encryption state and an API client
//! with a fresh access token.

use base64::Engine as _;
use parley_client_core::OwnDevice;
use uuid::Uuid;

use crate::api::Api;
use crate::error::{CliError, Result};
use crate::prompt::EnvOrTerminal;
use crate::store::{Profile, ProfileLock, Session, State};

/// Refresh the access token when it has less than this many seconds left.
const REFRESH_MARGIN_SECS: i64 = 60;

/// The profile and how to get its passphrase.
pub(crate) struct Context {
    pub profile: Profile,
    pub server_override: Option<String>,
    passphrases: EnvOrTerminal,
}

/// A signed-in profile held under its lock. Changes are kept only by [`Context::save`].
pub(crate) struct Signed {
    lock: ProfileLock,
    pub session: Session,
    pub device: OwnDevice,
    pub api: Api,
}

impl Signed {
    pub(crate) fn user_id(&self) -> Uuid {
        self.session.user_id
    }

    /// A user's display name from the cache, or a short form of the id.
    pub(crate) fn name_of(&self, user: Uuid) -> String {
        self.session.names.get(&user).cloned().unwrap_or_else(|| short(user))
    }
}

/// The first 8 hex digits of an id, for human output.
pub(crate) fn short(id: Uuid) -> String {
    id.simple().to_string()[..8].to_owned()
}

/// Seconds since the epoch.
pub(crate) fn now_unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0)
}

/// The `exp` claim of a JWT (not verified: only to know when to refresh).
pub(crate) fn token_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()
}

fn token_is_fresh(token: &str) -> bool {
    let now = i64::try_from(now_unix_secs()).unwrap_or(i64::MAX);
    token_expiry(token).is_some_and(|exp| exp - now > REFRESH_MARGIN_SECS)
}

impl Context {
    pub(crate) fn new(profile: Profile, server_override: Option<String>) -> Self {
        Self { profile, server_override, passphrases: EnvOrTerminal }
    }

    pub(crate) fn lock(&self) -> Result<ProfileLock> {
        self.profile.lock()
    }

    /// Loads whatever the profile holds (under `lock`).
    pub(crate) fn load(&mut self, lock: &ProfileLock) -> Result<State> {
        self.profile.load(lock, &self.passphrases)
    }

    /// Takes the lock, loads the signed-in state, refreshes the access token if it is about to expire (the
    /// rotated refresh token is saved at once) and publishes keys an earlier run could not.
    pub(crate) async fn signed_in(&mut self) -> Result<Signed> {
        let lock = self.lock()?;
        let state = self.load(&lock)?;
        let (Some(session), Some(device)) = (state.session, state.device) else {
            return Err(CliError::NotSignedIn(self.profile.name().to_owned()));
        };
        if let Some(server) = &self.server_override {
            if server.trim_end_matches('/') != session.server.trim_end_matches('/') {
                return Err(CliError::Usage(format!(
                    "profile {:?} belongs to {}, not {server}: use another --profile",
                    self.profile.name(),
                    session.server
                )));
            }
        }
        let api = Api::anonymous(&session.server);
        let mut signed = Signed { lock, session, device, api };
        self.ensure_fresh_token(&mut signed).await?;
        if !signed.session.keys_published {
            crate::e2ee::publish_keys(&mut signed, None).await?;
            self.save(&signed)?;
        }
        Ok(signed)
    }

    /// Refreshes the access token when it expires within a minute, saving the new pair at once (refresh
    /// tokens rotate: losing the new one would sign the device out).
    pub(crate) async fn ensure_fresh_token(&mut self, signed: &mut Signed) -> Result<()> {
        if !token_is_fresh(&signed.session.access_token) {
            let pair = Api::anonymous(&signed.session.server).refresh(&signed.session.refresh_token).await?;
            signed.session.access_token = pair.access_token;
            signed.session.refresh_token = pair.refresh_token;
            self.save(signed)?;
        }
        signed.api.set_token(&signed.session.access_token)
    }

    /// Saves a signed-in state (its lock is held).
    pub(crate) fn save(&mut self, signed: &Signed) -> Result<()> {
        self.profile.save(&signed.lock, &self.passphrases, Some(&signed.session), Some(&signed.device))
    }

    /// Saves `signed` and releases its lock.
    pub(crate) fn finish(&mut self, signed: Signed) -> Result<()> {
        self.save(&signed)
    }

    /// Saves a freshly signed-in session and device under `lock`.
    pub(crate) fn save_new(&mut self, lock: &ProfileLock, session: &Session, device: &OwnDevice) -> Result<()> {
        self.profile.save(lock, &self.passphrases, Some(session), Some(device))
    }

    /// Deletes the profile's state (after logout).
    pub(crate) fn clear(&mut self, signed: Signed) -> Result<()> {
        self.profile.clear(&signed.lock)
    }

    /// Builds a [`Signed`] from parts (after register or login) with `lock` held.
    pub(crate) fn adopt(&self, lock: ProfileLock, session: Session, device: OwnDevice) -> Result<Signed> {
        let api = Api::with_token(&session.server, &session.access_token)?;
        Ok(Signed { lock, session, device, api })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_read_from_the_token() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"x","exp":1700000000}"#);
        assert_eq!(token_expiry(&format!("h.{payload}.s")), Some(1_700_000_000));
        assert_eq!(token_expiry("not a token"), None);
        assert!(!token_is_fresh(&format!("h.{payload}.s")));
        let later = now_unix_secs() + 600;
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"exp":{later}}}"#));
        assert!(token_is_fresh(&format!("h.{payload}.s")));
    }
}
