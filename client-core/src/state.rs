//! Saving and restoring the whole device state.
//!
//! The state (vodozemac's serde pickles of the account and every session, plus the trust store and the
//! Megolm bookkeeping) is serialised as one JSON document, which is then encrypted with
//! ChaCha20-Poly1305 under the caller's 32-byte key. Layout of the bytes:
//! `"PCS1"` (4 bytes, also the AEAD associated data) || nonce (12 random bytes) || ciphertext || tag (16).
//! vodozemac's own per-object pickle encryption is not used: one AEAD over everything also protects the
//! trust store and the bookkeeping, and leaves a single format to implement elsewhere.

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use vodozemac::megolm::{GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle};
use vodozemac::olm::{Account, AccountPickle, Session, SessionPickle};
use zeroize::Zeroizing;

use crate::device::{InboundRoomSession, OutboundRoomSession, OwnDevice};
use crate::encoding::random_fill;
use crate::trust::TrustStore;
use crate::{CoreError, DeviceAddress, Result};

/// Magic prefix and associated data of saved state.
pub const STATE_MAGIC: &[u8; 4] = b"PCS1";
const NONCE_LENGTH: usize = 12;

#[derive(Serialize, Deserialize)]
struct SavedDevice {
    user_id: Uuid,
    device_id: Uuid,
    account: AccountPickle,
    trust: TrustStore,
    olm_sessions: Vec<SavedOlmSessions>,
    outbound: Vec<SavedOutbound>,
    inbound: Vec<SavedInbound>,
}

#[derive(Serialize, Deserialize)]
struct SavedOlmSessions {
    peer_curve25519: String,
    sessions: Vec<SessionPickle>,
}

#[derive(Serialize, Deserialize)]
struct SavedOutbound {
    chat_id: Uuid,
    session: GroupSessionPickle,
    initial_session_key: String,
    created_at_unix_secs: u64,
    recipients: Vec<DeviceAddress>,
    shared_with: Vec<DeviceAddress>,
}

#[derive(Serialize, Deserialize)]
struct SavedInbound {
    session_id: String,
    session: InboundGroupSessionPickle,
    chat_id: Uuid,
    sender: DeviceAddress,
}

impl OwnDevice {
    /// The whole state, encrypted under `key` (see the module documentation for the format).
    pub fn to_encrypted_bytes(&self, key: &[u8; 32]) -> Result<Vec<u8>> {
        let saved = SavedDevice {
            user_id: self.user_id,
            device_id: self.device_id,
            account: self.account.pickle(),
            trust: self.trust.clone(),
            olm_sessions: self
                .olm_sessions
                .iter()
                .map(|(peer, sessions)| SavedOlmSessions {
                    peer_curve25519: peer.clone(),
                    sessions: sessions.iter().map(Session::pickle).collect(),
                })
                .collect(),
            outbound: self
                .outbound
                .iter()
                .map(|(chat_id, outbound)| SavedOutbound {
                    chat_id: *chat_id,
                    session: outbound.session.pickle(),
                    initial_session_key: outbound.initial_session_key.clone(),
                    created_at_unix_secs: outbound.created_at_unix_secs,
                    recipients: outbound.recipients.iter().copied().collect(),
                    shared_with: outbound.shared_with.iter().copied().collect(),
                })
                .collect(),
            inbound: self
                .inbound
                .iter()
                .map(|(session_id, inbound)| SavedInbound {
                    session_id: session_id.clone(),
                    session: inbound.session.pickle(),
                    chat_id: inbound.chat_id,
                    sender: inbound.sender,
                })
                .collect(),
        };
        let plaintext =
            Zeroizing::new(serde_json::to_vec(&saved).map_err(|error| CoreError::malformed("device state", error))?);
        let mut nonce = [0u8; NONCE_LENGTH];
        random_fill(&mut nonce)?;
        let cipher = ChaCha20Poly1305::new(&(*key).into());
        let payload = chacha20poly1305::aead::Payload { msg: plaintext.as_slice(), aad: STATE_MAGIC };
        let ciphertext = cipher
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| CoreError::malformed("device state", "too large"))?;
        let mut bytes = Vec::with_capacity(STATE_MAGIC.len() + NONCE_LENGTH + ciphertext.len());
        bytes.extend_from_slice(STATE_MAGIC);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Ok(bytes)
    }

    /// Restores a state saved by [`to_encrypted_bytes`](Self::to_encrypted_bytes).
    pub fn from_encrypted_bytes(bytes: &[u8], key: &[u8; 32]) -> Result<Self> {
        let rest = bytes.strip_prefix(STATE_MAGIC.as_slice()).ok_or(CoreError::StateDecryption)?;
        if rest.len() < NONCE_LENGTH {
            return Err(CoreError::StateDecryption);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LENGTH);
        let nonce: [u8; NONCE_LENGTH] = nonce.try_into().map_err(|_| CoreError::StateDecryption)?;
        let cipher = ChaCha20Poly1305::new(&(*key).into());
        let payload = chacha20poly1305::aead::Payload { msg: ciphertext, aad: STATE_MAGIC };
        let plaintext =
            Zeroizing::new(cipher.decrypt(&Nonce::from(nonce), payload).map_err(|_| CoreError::StateDecryption)?);
        let saved: SavedDevice =
            serde_json::from_slice(&plaintext).map_err(|error| CoreError::malformed("device state", error))?;

        Ok(Self {
            user_id: saved.user_id,
            device_id: saved.device_id,
            account: Account::from_pickle(saved.account),
            trust: saved.trust,
            olm_sessions: saved
                .olm_sessions
                .into_iter()
                .map(|entry| (entry.peer_curve25519, entry.sessions.into_iter().map(Session::from_pickle).collect()))
                .collect(),
            outbound: saved
                .outbound
                .into_iter()
                .map(|entry| {
                    let outbound = OutboundRoomSession {
                        session: GroupSession::from_pickle(entry.session),
                        initial_session_key: entry.initial_session_key,
                        created_at_unix_secs: entry.created_at_unix_secs,
                        recipients: entry.recipients.into_iter().collect(),
                        shared_with: entry.shared_with.into_iter().collect(),
                    };
                    (entry.chat_id, outbound)
                })
                .collect(),
            inbound: saved
                .inbound
                .into_iter()
                .map(|entry| {
                    let inbound = InboundRoomSession {
                        session: InboundGroupSession::from_pickle(entry.session),
                        chat_id: entry.chat_id,
                        sender: entry.sender,
                    };
                    (entry.session_id, inbound)
                })
                .collect(),
        })
    }
}
