//! A chat message's body on the server. Mode byte bit 0 clear: the rest is the `ciphertext` of
//! `POST /chats/{id}/messages` (`decode_ciphertext`), which is then sealed for the event store
//! (`sealed::seal`), stored as JSON and opened again as the projections open it: it must come
//! back unchanged. Set: the rest is a `SealedBody` as read from a stored event, opened with the
//! message's key (`sealed::open`), and with keys of the wrong length.

#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use parley_api::chats::routes::{decode_ciphertext, MAX_CIPHERTEXT_BYTES};
use parley_domain::sealed::{self, SealedBody, KEY_BYTES, NONCE_BYTES};

const KEY: [u8; KEY_BYTES] = [1; KEY_BYTES];

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    if mode & 1 == 1 {
        let Ok(body) = serde_json::from_slice::<SealedBody>(data) else { return };
        let opened = sealed::open(&KEY, &body);
        // Only the message's key opens it: a key of another length never does.
        for length in [0, 1, KEY_BYTES - 1, KEY_BYTES + 1] {
            assert!(sealed::open(&vec![1; length], &body).is_err(), "a {length}-byte key opened a body");
        }
        // What opens is what `seal` makes of its plaintext under its nonce (in canonical base64).
        if let Ok(plaintext) = opened {
            let canonical = |text: &str| STANDARD.encode(STANDARD.decode(text).unwrap_or_default());
            let nonce: [u8; NONCE_BYTES] = STANDARD
                .decode(&body.nonce)
                .ok()
                .and_then(|nonce| nonce.try_into().ok())
                .unwrap_or_else(|| panic!("a body opened with a nonce that is not {NONCE_BYTES} bytes: {body:?}"));
            let expected = SealedBody { nonce: canonical(&body.nonce), data: canonical(&body.data) };
            assert_eq!(sealed::seal(&KEY, &nonce, &plaintext), expected);
        }
        return;
    }
    let Ok(ciphertext) = std::str::from_utf8(data) else { return };
    let Ok(bytes) = decode_ciphertext(ciphertext) else { return };
    assert!(!bytes.is_empty() && bytes.len() <= MAX_CIPHERTEXT_BYTES, "{} bytes accepted", bytes.len());
    let sealed = sealed::seal(&KEY, &[2; NONCE_BYTES], &bytes);
    let stored = serde_json::to_string(&sealed).unwrap_or_else(|e| panic!("a sealed body as JSON: {e}"));
    let read: SealedBody = serde_json::from_str(&stored).unwrap_or_else(|e| panic!("a stored body read back: {e}"));
    assert_eq!(sealed::open(&KEY, &read).as_ref(), Ok(&bytes), "a sealed body did not open to its ciphertext");
});
