//! Profiles and their encrypted state.
//!
//! A profile lives in `$XDG_DATA_HOME/parley/<profile>/` (default `~/.local/share/parley/<profile>/`), a
//! directory of mode 0700 holding files of mode 0600:
//! - `kdf.json`: the Argon2id parameters and the random 16-byte salt (not secret);
//! - `state`: the session (server, ids, access and refresh tokens, cached display names) and the
//!   encryption core's whole device state, both encrypted under a 32-byte key derived with Argon2id from a
//!   passphrase (`PARLEY_PASSPHRASE`, or asked on the terminal). Layout: `"PCLI"` || u32 big-endian length
//!   of the session part || session part (12-byte random nonce || ChaCha20-Poly1305 ciphertext and tag of
//!   the session JSON, associated data `"PCLI"`) || the core's `OwnDevice::to_encrypted_bytes` under the
//!   same key (its own `"PCS1"` format: random nonce, ChaCha20-Poly1305).
//! - `lock`: an empty file that `flock(LOCK_EX)` is taken on around every load-modify-save, so two
//!   `parley` processes on one profile never lose each other's updates.
//!
//! `state` is replaced atomically (written to `state.tmp`, synced, renamed).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use parley_client_core::OwnDevice;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{CliError, Result};

const STATE_MAGIC: &[u8; 4] = b"PCLI";
const NONCE_LENGTH: usize = 12;
const SALT_LENGTH: usize = 16;

/// Where a passphrase comes from when one is needed.
pub(crate) trait PassphraseSource {
    /// The passphrase; `confirm` asks twice (a new profile).
    fn passphrase(&self, confirm: bool) -> Result<parley_runtime::Secret>;
}

/// A signed-in account on one server: what the profile needs to act as this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Session {
    pub server: String,
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub name: String,
    #[serde(default)]
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
    /// Display names of users seen, to show senders without asking the server each time.
    #[serde(default)]
    pub names: BTreeMap<Uuid, String>,
    /// Whether the server accepted this device's identity keys (else the next command publishes them).
    #[serde(default)]
    pub keys_published: bool,
}

/// Everything a profile keeps.
#[derive(Default)]
pub(crate) struct State {
    pub session: Option<Session>,
    pub device: Option<OwnDevice>,
}

/// The Argon2id settings of a profile, stored in `kdf.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KdfSettings {
    algorithm: String,
    version: u32,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    /// Standard base64 of the salt.
    salt: String,
}

impl KdfSettings {
    fn fresh() -> Self {
        let mut salt = [0u8; SALT_LENGTH];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        Self {
            algorithm: "argon2id".into(),
            version: 0x13,
            // OWASP's Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
            salt: base64::engine::general_purpose::STANDARD.encode(salt),
        }
    }

    fn derive(&self, passphrase: &str, profile: &str) -> Result<StateKey> {
        let bad = |reason: String| CliError::BadState { profile: profile.to_owned(), reason };
        if self.algorithm != "argon2id" || self.version != 0x13 {
            return Err(bad(format!("unknown key derivation {} v{}", self.algorithm, self.version)));
        }
        let salt = base64::engine::general_purpose::STANDARD
            .decode(&self.salt)
            .map_err(|error| bad(format!("kdf.json salt: {error}")))?;
        let params = Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32))
            .map_err(|error| bad(format!("kdf.json parameters: {error}")))?;
        let mut key = StateKey([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), &salt, &mut key.0)
            .map_err(|error| bad(format!("key derivation: {error}")))?;
        Ok(key)
    }
}

/// The 32-byte state key; wiped when dropped.
pub(crate) struct StateKey([u8; 32]);

impl Drop for StateKey {
    fn drop(&mut self) {
        for byte in &mut self.0 {
            // SAFETY: a plain write through a valid, exclusive reference; volatile so it is not elided.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

/// One profile's directory, and its state key once derived.
pub(crate) struct Profile {
    name: String,
    dir: PathBuf,
    key: Option<StateKey>,
}

/// The held `flock` on a profile's lock file; released when dropped.
pub(crate) struct ProfileLock {
    file: File,
}

impl Drop for ProfileLock {
    fn drop(&mut self) {
        // SAFETY: flock on a descriptor this struct owns; closing the file would release it anyway.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// `$XDG_DATA_HOME/parley`, or `~/.local/share/parley`.
pub(crate) fn data_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("parley"));
    }
    let home = std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .ok_or_else(|| CliError::Usage("neither XDG_DATA_HOME nor HOME is set".into()))?;
    Ok(PathBuf::from(home).join(".local/share/parley"))
}

/// Profile names become directory names: letters, digits, `.`, `_`, `-`, not starting with `.`.
pub(crate) fn check_profile_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "bad profile name {name:?}: use up to 64 letters, digits, '.', '_' or '-', not starting with '.'"
        )))
    }
}

fn make_private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(CliError::io("create", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(CliError::io("set permissions of", path))
}

fn open_private(path: &Path, options: &mut OpenOptions) -> Result<File> {
    let file = options.mode(0o600).open(path).map_err(CliError::io("open", path))?;
    file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(CliError::io("set permissions of", path))?;
    Ok(file)
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let target = dir.join(name);
    let temporary = dir.join(format!("{name}.tmp"));
    let mut file = open_private(&temporary, OpenOptions::new().write(true).create(true).truncate(true))?;
    file.write_all(bytes).map_err(CliError::io("write", &temporary))?;
    file.sync_all().map_err(CliError::io("sync", &temporary))?;
    drop(file);
    fs::rename(&temporary, &target).map_err(CliError::io("replace", &target))?;
    // The rename itself must reach the disk too.
    File::open(dir).and_then(|dir| dir.sync_all()).map_err(CliError::io("sync", dir))
}

impl Profile {
    /// The profile `name` under `root` (see [`data_root`]); creates its directory (0700).
    pub(crate) fn open(root: &Path, name: &str) -> Result<Self> {
        check_profile_name(name)?;
        make_private_dir(root)?;
        let dir = root.join(name);
        make_private_dir(&dir)?;
        Ok(Self { name: name.to_owned(), dir, key: None })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    #[cfg(test)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the profile's exclusive lock, waiting for another process to release it.
    pub(crate) fn lock(&self) -> Result<ProfileLock> {
        let path = self.dir.join("lock");
        let file = open_private(&path, OpenOptions::new().read(true).write(true).create(true).truncate(false))?;
        loop {
            // SAFETY: flock on the descriptor of a file we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(ProfileLock { file });
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(CliError::Io { action: "lock", path, source: error });
            }
        }
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Whether the profile has saved state.
    pub(crate) fn has_state(&self) -> bool {
        self.state_path().exists()
    }

    /// Derives (once) the state key, creating `kdf.json` with a fresh salt when `create` and none exists.
    fn key(&mut self, passphrases: &dyn PassphraseSource, create: bool) -> Result<&StateKey> {
        if self.key.is_none() {
            let kdf_path = self.dir.join("kdf.json");
            let (settings, new) = match fs::read(&kdf_path) {
                Ok(bytes) => {
                    let settings: KdfSettings = serde_json::from_slice(&bytes).map_err(|error| CliError::BadState {
                        profile: self.name.clone(),
                        reason: format!("kdf.json: {error}"),
                    })?;
                    (settings, false)
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => (KdfSettings::fresh(), true),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    return Err(CliError::NotSignedIn(self.name.clone()))
                }
                Err(error) => return Err(CliError::Io { action: "read", path: kdf_path, source: error }),
            };
            let passphrase = passphrases.passphrase(new)?;
            let key = settings.derive(passphrase.expose(), &self.name)?;
            if new {
                let json = serde_json::to_vec_pretty(&settings)
                    .map_err(|error| CliError::BadState { profile: self.name.clone(), reason: error.to_string() })?;
                write_atomically(&self.dir, "kdf.json", &json)?;
            }
            self.key = Some(key);
        }
        self.key.as_ref().ok_or_else(|| CliError::NotSignedIn(self.name.clone()))
    }

    /// Loads the state (empty when there is none). Call with the lock held.
    pub(crate) fn load(&mut self, _lock: &ProfileLock, passphrases: &dyn PassphraseSource) -> Result<State> {
        let path = self.state_path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(error) => return Err(CliError::Io { action: "read", path, source: error }),
        };
        let name = self.name.clone();
        let key = self.key(passphrases, false)?;
        decode_state(&bytes, key, &name)
    }

    /// Saves the state. Call with the lock held (the one `load` was called under).
    pub(crate) fn save(
        &mut self,
        _lock: &ProfileLock,
        passphrases: &dyn PassphraseSource,
        session: Option<&Session>,
        device: Option<&OwnDevice>,
    ) -> Result<()> {
        let name = self.name.clone();
        let key = self.key(passphrases, true)?;
        let bytes = encode_state(session, device, key, &name)?;
        write_atomically(&self.dir, "state", &bytes)
    }

    /// Deletes the saved state (after logging out). The salt stays; the next sign-in makes a new device.
    pub(crate) fn clear(&mut self, _lock: &ProfileLock) -> Result<()> {
        let path = self.state_path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(CliError::Io { action: "remove", path, source: error }),
        }
    }
}

fn encode_state(
    session: Option<&Session>,
    device: Option<&OwnDevice>,
    key: &StateKey,
    profile: &str,
) -> Result<Vec<u8>> {
    let bad = |reason: String| CliError::BadState { profile: profile.to_owned(), reason };
    let session = serde_json::to_vec(&session).map_err(|error| bad(error.to_string()))?;
    let mut nonce = [0u8; NONCE_LENGTH];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let cipher = ChaCha20Poly1305::new((&key.0).into());
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), Payload { msg: &session, aad: STATE_MAGIC })
        .map_err(|_| bad("session too large to encrypt".into()))?;
    let session_length = u32::try_from(NONCE_LENGTH + sealed.len()).map_err(|_| bad("session too large".into()))?;
    let device = match device {
        Some(device) => device.to_encrypted_bytes(&key.0)?,
        None => Vec::new(),
    };
    let mut bytes = Vec::with_capacity(8 + session_length as usize + device.len());
    bytes.extend_from_slice(STATE_MAGIC);
    bytes.extend_from_slice(&session_length.to_be_bytes());
    bytes.extend_from_slice(&nonce);
    bytes.extend_from_slice(&sealed);
    bytes.extend_from_slice(&device);
    Ok(bytes)
}

fn decode_state(bytes: &[u8], key: &StateKey, profile: &str) -> Result<State> {
    let bad = |reason: &str| CliError::BadState { profile: profile.to_owned(), reason: reason.to_owned() };
    let rest = bytes.strip_prefix(STATE_MAGIC.as_slice()).ok_or_else(|| bad("not a parley state file"))?;
    let (length, rest) = rest.split_first_chunk::<4>().ok_or_else(|| bad("truncated"))?;
    let length = u32::from_be_bytes(*length) as usize;
    if rest.len() < length || length < NONCE_LENGTH {
        return Err(bad("truncated"));
    }
    let (session, device) = rest.split_at(length);
    let (nonce, sealed) = session.split_at(NONCE_LENGTH);
    let nonce: [u8; NONCE_LENGTH] = nonce.try_into().map_err(|_| bad("truncated"))?;
    let cipher = ChaCha20Poly1305::new((&key.0).into());
    let session = cipher
        .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: STATE_MAGIC })
        .map_err(|_| CliError::WrongPassphrase(profile.to_owned()))?;
    let session: Option<Session> =
        serde_json::from_slice(&session).map_err(|error| bad(&format!("session: {error}")))?;
    let device = if device.is_empty() {
        None
    } else {
        Some(OwnDevice::from_encrypted_bytes(device, &key.0).map_err(|error| match error {
            parley_client_core::CoreError::StateDecryption => CliError::WrongPassphrase(profile.to_owned()),
            other => CliError::Crypto(other),
        })?)
    };
    Ok(State { session, device })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str);

    impl PassphraseSource for Fixed {
        fn passphrase(&self, _confirm: bool) -> Result<parley_runtime::Secret> {
            Ok(parley_runtime::Secret::new(self.0))
        }
    }

    fn temp_root(tag: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("parley-cli-test-{tag}-{}", Uuid::new_v4().simple()));
        fs::create_dir_all(&root).expect("temp dir");
        root
    }

    fn sample_state() -> State {
        let user_id = Uuid::new_v4();
        let device_id = Uuid::new_v4();
        State {
            session: Some(Session {
                server: "http://127.0.0.1:8080".into(),
                user_id,
                device_id,
                name: "Ada".into(),
                email: "ada@example.org".into(),
                access_token: "ACCESS-TOKEN-SECRET".into(),
                refresh_token: "REFRESH-TOKEN-SECRET".into(),
                names: BTreeMap::from([(user_id, "Ada".to_owned())]),
                keys_published: true,
            }),
            device: Some(OwnDevice::new(user_id, device_id)),
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn state_round_trips_encrypted_with_private_permissions() {
        let root = temp_root("round-trip");
        let mut profile = Profile::open(&root, "alice").expect("open");
        let state = sample_state();
        {
            let lock = profile.lock().expect("lock");
            assert!(profile.load(&lock, &Fixed("pw")).expect("empty load").session.is_none());
            profile.save(&lock, &Fixed("pw"), state.session.as_ref(), state.device.as_ref()).expect("save");
        }

        // A fresh process: the key is derived again from the stored salt.
        let mut again = Profile::open(&root, "alice").expect("reopen");
        let lock = again.lock().expect("lock");
        let loaded = again.load(&lock, &Fixed("pw")).expect("load");
        assert_eq!(loaded.session, state.session);
        let (before, after) = (state.device.as_ref().expect("device"), loaded.device.as_ref().expect("device"));
        assert_eq!(before.identity_keys(), after.identity_keys());

        assert_eq!(mode(&root.join("alice")), 0o700);
        for file in ["state", "kdf.json", "lock"] {
            assert_eq!(mode(&root.join("alice").join(file)), 0o600, "{file}");
        }
        let raw = fs::read(root.join("alice/state")).expect("read");
        for secret in [&b"ACCESS-TOKEN-SECRET"[..], b"REFRESH-TOKEN-SECRET", b"ada@example.org", b"Ada"] {
            assert!(!raw.windows(secret.len()).any(|window| window == secret), "plaintext in the state file");
        }
        assert!(!root.join("alice/state.tmp").exists());
        fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn a_wrong_passphrase_or_altered_file_is_refused() {
        let root = temp_root("wrong");
        let mut profile = Profile::open(&root, "bob").expect("open");
        let lock = profile.lock().expect("lock");
        let state = sample_state();
        profile.save(&lock, &Fixed("right"), state.session.as_ref(), state.device.as_ref()).expect("save");
        drop(lock);

        let mut other = Profile::open(&root, "bob").expect("open");
        let lock = other.lock().expect("lock");
        assert!(matches!(other.load(&lock, &Fixed("wrong")), Err(CliError::WrongPassphrase(_))));
        drop(lock);

        let path = root.join("bob/state");
        let mut raw = fs::read(&path).expect("read");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        fs::write(&path, raw).expect("write");
        let mut third = Profile::open(&root, "bob").expect("open");
        let lock = third.lock().expect("lock");
        assert!(matches!(third.load(&lock, &Fixed("right")), Err(CliError::WrongPassphrase(_))));
        fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn existing_loose_permissions_are_tightened() {
        let root = temp_root("perms");
        let dir = root.join("carol");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
        let profile = Profile::open(&root, "carol").expect("open");
        assert_eq!(mode(profile.dir()), 0o700);
        fs::remove_dir_all(&root).ok();
    }

    #[test]
    fn profile_names_cannot_escape_the_data_directory() {
        for bad in ["", "..", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_profile_name(bad).is_err(), "{bad:?}");
        }
        for good in ["default", "alice-laptop", "bob_2", "c.d"] {
            assert!(check_profile_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn the_lock_excludes_a_second_holder() {
        let root = temp_root("lock");
        let profile = Profile::open(&root, "dave").expect("open");
        let held = profile.lock().expect("lock");
        let file = OpenOptions::new().read(true).write(true).open(root.join("dave/lock")).expect("open lock");
        // SAFETY: flock on a descriptor we own.
        let busy = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(busy, -1, "a second exclusive lock must not be granted while the first is held");
        drop(held);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
        fs::remove_dir_all(&root).ok();
    }
}
