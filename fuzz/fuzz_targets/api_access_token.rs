//! The api's access tokens (`Authorization: Bearer`, `?token=` and the `bearer` subprotocol on
//! `/ws`, the WebSocket `auth` frame): `TokenKeys::verify_access`.
//!
//! Mode byte bit 0 clear: the rest is the token as the client sent it. Set: the rest is a header
//! and claims (split at the first newline; without one, the api's usual header and the rest as
//! claims) that the target signs with the api's key, so that the claims' parsing and checks run.

#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_fuzz::tokens;

/// The header `TokenKeys` writes, but for its `kid` (an unknown `kid` means the signing key).
const USUAL_HEADER: &[u8] = br#"{"typ":"JWT","alg":"EdDSA"}"#;

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    let token = if mode & 1 == 1 {
        let (header, claims) = tokens::header_and_claims(data, USUAL_HEADER);
        tokens::sign_raw(&header, &claims)
    } else {
        match std::str::from_utf8(data) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        }
    };
    // New keys for each input: they remember tokens they verified, which would make an input's
    // outcome depend on the ones before it.
    let keys = tokens::api_keys();
    // Read before the check, so a second that ends meanwhile cannot fail a good token below.
    let now = chrono::Utc::now().timestamp();
    let Some(claims) = keys.verify_access(&token) else { return };
    // Whatever passed is an unexpired access token of this api, and passes again.
    assert_eq!(claims.typ, "access", "another kind of token opened the api: {claims:?}");
    assert_eq!(claims.iss, tokens::ISSUER);
    assert!(claims.exp >= now, "an expired access token passed: {claims:?}");
    assert_eq!(keys.verify_access(&token).as_ref(), Some(&claims), "the remembered verification differs");
});
