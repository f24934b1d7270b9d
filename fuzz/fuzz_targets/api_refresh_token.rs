//! The api's refresh tokens (`POST /auth/refresh`, logout): `RefreshToken::parse` of
//! `<session id>.<256 random bits>`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_api::auth::tokens::RefreshToken;
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some(parsed) = RefreshToken::parse(text) else { return };
    // What parses is the trimmed token, whose first part is the session it names, and parses
    // again to the same token (so its hash, which is what the database holds, is stable).
    assert_eq!(parsed.token, text.trim());
    let (session, _) = parsed.token.split_once('.').unwrap_or_else(|| panic!("no dot in {:?}", parsed.token));
    assert_eq!(Uuid::try_parse(session).ok(), Some(parsed.session_id));
    assert_eq!(RefreshToken::parse(&parsed.token).as_ref(), Some(&parsed));
    let hash = parsed.hash();
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "hash {hash:?}");
});
