//! The api's WebSocket (`/ws`). Mode byte bit 0 clear: the rest is a client's text frame, read as
//! the session reads it (`realtime::ClientFrame`); an `auth` frame's token then goes through
//! `verify_access`, as re-authentication does. Set: the rest is a realtime message as a replica
//! receives it from NATS (`RealtimeMessage::decode`), which must encode back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_api::realtime::ClientFrame;
use parley_eventbus::stream::RealtimeMessage;
use parley_fuzz::tokens;

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    if mode & 1 == 1 {
        let Some(message) = RealtimeMessage::decode(data) else { return };
        let encoded = message.encode();
        assert_eq!(RealtimeMessage::decode(&encoded), Some(message), "{:?}", String::from_utf8_lossy(&encoded));
        return;
    }
    // The socket hands the session text frames only, which are UTF-8.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(ClientFrame::Auth { token }) = serde_json::from_str::<ClientFrame>(text) {
        // The sessions' user is whoever the seeds' tokens name; what matters here is that any
        // token is read without harm.
        let _ = tokens::api_keys().verify_access(&token);
    }
});
