//! The SFU's join tokens (`?token=` on `/rtc`): `TokenVerifier::verify`, with the api's public key
//! as the SFU fetches it from the JWKS.
//!
//! Mode byte bit 0 clear: the rest is the token as the client sent it. Set: the rest is a header
//! and claims (split at the first newline; without one, the api's usual header and the rest as
//! claims) that the target signs with the api's key, so that the claims' parsing and checks run.
//! Bit 1 set: the client also names the call (`?call_id=`). The SFU is node `sfu-0`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use parley_fuzz::tokens;
use parley_sfu::token::TokenVerifier;
use uuid::Uuid;

/// The call the seeds' tokens are for (and the one the client names in mode bit 1).
const CALL: Uuid = Uuid::from_u128(3);
/// This SFU's node id in the directory (the seeds have tokens for it and for another).
const NODE: &str = "sfu-0";

struct Fixed {
    verifier: TokenVerifier,
    header: Vec<u8>,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let jwks = tokens::api_keys().jwks();
        let kid = jwks["keys"][0]["kid"].as_str().unwrap_or_default().to_owned();
        // An unknown `kid` makes the verifier fetch the set again: from a URL that cannot be
        // parsed, so that the fetch fails at once, without a socket.
        let verifier =
            TokenVerifier::new("not a URL: the fuzz target sets the keys".into(), tokens::ISSUER).for_node(NODE);
        let set = serde_json::from_value(jwks).unwrap_or_else(|e| panic!("the api's JWKS: {e}"));
        assert_eq!(verifier.set_keys(&set), 1, "the api's key is usable");
        let header = format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{kid}"}}"#).into_bytes();
        Fixed { verifier, header }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    let fixed = fixed();
    let signed = mode & 1 == 1;
    let token = if signed {
        let (header, claims) = tokens::header_and_claims(data, &fixed.header);
        tokens::sign_raw(&header, &claims)
    } else {
        match std::str::from_utf8(data) {
            Ok(token) => token.to_owned(),
            Err(_) => return,
        }
    };
    let call = (mode & 2 == 2).then_some(CALL);
    // Read before the check, so a second that ends meanwhile cannot fail a good token below.
    let now = chrono::Utc::now().timestamp();
    let verdict = parley_fuzz::runtime().block_on(fixed.verifier.verify(Some(&token), call));
    let Ok(claims) = verdict else { return };
    // Whatever passed is a join token of this api for the SFU, unexpired, for the call named.
    assert!(claims.exp >= now, "an expired join token passed: {claims:?}");
    assert!(call.is_none_or(|call| call == claims.call), "a token for another call passed");
    assert!(claims.node.as_deref().is_none_or(|node| node == NODE), "a token for another node passed: {claims:?}");
    if signed {
        let (_, raw) = tokens::header_and_claims(data, &fixed.header);
        let json: serde_json::Value =
            serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("claims that are not JSON passed: {e}"));
        assert!(tokens::claim_names(&json["iss"], tokens::ISSUER), "another issuer's token passed: {json}");
        assert!(tokens::claim_names(&json["aud"], "parley-sfu"), "a token for another audience passed: {json}");
    }
});
