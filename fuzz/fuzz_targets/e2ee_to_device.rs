//! To-device messages as a client decrypts them (`OwnDevice::decrypt_to_device`): Bob, who trusts
//! Carol's device, reads what the server delivers as sent by it (room keys, mostly).
//!
//! Mode byte % 3 = 0: the rest is the message's `ciphertext` as delivered (the Olm envelope
//! JSON). 1: the same with `@name@`s filled in (`@sender_key@` is Carol's Curve25519 key, so that
//! the envelope's checks pass). 2: the rest is the plaintext Carol encrypts to Bob in a pre-key
//! message, with `@name@`s filled in (`@sender_ed25519@`, `@recipient_ed25519@`,
//! `@spare_session_id@`, `@spare_session_key@`), so that the plaintext's parsing and checks and
//! the room key's run.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use parley_client_core::ToDeviceEvent;
use parley_fuzz::e2ee::{incoming_from_carol, Parties, CAROL};

thread_local! {
    static PARTIES: RefCell<Parties> = RefCell::new(Parties::new());
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    let Ok(text) = std::str::from_utf8(data) else { return };
    PARTIES.with_borrow(|parties| {
        let names = parties.names();
        let names: Vec<(&str, &str)> = names.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let message = match mode % 3 {
            0 => incoming_from_carol(text.to_owned()),
            1 => incoming_from_carol(parley_fuzz::fill_in(text, &names)),
            _ => parties.to_device_from_carol(parley_fuzz::fill_in(text, &names).as_bytes()),
        };
        let mut bob = parties.fresh_bob();
        if let Ok(ToDeviceEvent::RoomKey { sender, .. }) = bob.decrypt_to_device(&message) {
            assert_eq!(sender, CAROL, "a room key is filed under another sender");
        }
    });
});
