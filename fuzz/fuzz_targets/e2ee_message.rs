//! Chat messages as a client decrypts them (`OwnDevice::decrypt_message`): Bob, who holds the
//! room key Carol sent him for the chat, reads what the server delivers as Carol's message.
//!
//! Mode byte % 3 = 0: the rest is the message's `ciphertext` as delivered (padded base64).
//! 1: the rest is the Megolm envelope JSON inside it (`@session_id@` is the session Bob knows),
//! which the target base64-encodes. 2: the rest is the plaintext JSON Carol encrypts with that
//! session, so that the plaintext's parsing runs: it must decrypt exactly when it is a message of
//! this chat, to its content. A file message's attachment key, iv and hash are then read as the
//! download's decryption reads them.

#![no_main]

use std::cell::RefCell;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use parley_client_core::payloads::{MegolmEnvelope, MegolmPlaintext, MEGOLM_ALGORITHM};
use parley_client_core::{AttachmentDecryptor, AttachmentVerifier, MessageContent};
use parley_fuzz::e2ee::{Parties, CAROL, CHAT};

thread_local! {
    static PARTIES: RefCell<Parties> = RefCell::new(Parties::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    PARTIES.with_borrow_mut(|parties| {
        let mut expected = None;
        let ciphertext = match mode % 3 {
            0 => match std::str::from_utf8(data) {
                Ok(ciphertext) => ciphertext.to_owned(),
                Err(_) => return,
            },
            1 => {
                let Ok(envelope) = std::str::from_utf8(data) else { return };
                let names = parties.names();
                let names: Vec<(&str, &str)> = names.iter().map(|(name, value)| (*name, value.as_str())).collect();
                STANDARD.encode(parley_fuzz::fill_in(envelope, &names))
            }
            _ => {
                expected = Some(serde_json::from_slice::<MegolmPlaintext>(data).ok().filter(|p| p.chat_id == CHAT));
                let message = parties.group.encrypt(data);
                let envelope = MegolmEnvelope { session_id: parties.group.session_id(), body: message.to_base64() };
                STANDARD.encode(serde_json::to_vec(&envelope).unwrap_or_else(|e| panic!("an envelope: {e}")))
            }
        };
        let decrypted = parties.keyed_bob.decrypt_message(CHAT, CAROL, MEGOLM_ALGORITHM, &ciphertext);
        match (expected, &decrypted) {
            (Some(Some(plaintext)), Ok(message)) => {
                assert_eq!(message.content, plaintext.content.without_invalid_parts(), "decrypted to other content");
            }
            (Some(Some(plaintext)), Err(error)) => {
                panic!("a message of this chat did not decrypt: {error}: {plaintext:?}")
            }
            (Some(None), Ok(message)) => panic!("a plaintext that is no message of this chat decrypted: {message:?}"),
            _ => {}
        }
        if let Ok(message) = decrypted {
            if let MessageContent::File { file, thumbnail, .. } = &message.content {
                assert!(thumbnail.as_ref().is_none_or(|t| t.is_valid()), "an invalid thumbnail was kept");
                if let Ok(mut decryptor) = AttachmentDecryptor::new(file) {
                    let mut chunk = *b"sixteen bytes...";
                    let _ = decryptor.update(&mut chunk);
                    let _ = decryptor.finish();
                }
                if let Ok(mut verifier) = AttachmentVerifier::new(file) {
                    verifier.update(b"");
                    let _ = verifier.finish();
                }
            }
        }
    });
});
