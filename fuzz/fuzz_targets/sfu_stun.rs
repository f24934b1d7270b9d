//! Datagrams on the SFU's media socket: the router reads the STUN `USERNAME` of a binding request
//! from an address it does not know (`stun::local_ufrag`) to find the participant, and the shard
//! routes it (and what later comes from that address) to the participant's str0m `Rtc`.
//!
//! Mode 0: one datagram through `is_stun` and `local_ufrag`, with what they promise checked.
//! Mode 1: a participant joins a fresh shard, then the rest is datagrams (each a big-endian u16
//! length and its bytes; the first byte of each picks one of two sources) that go to the shard as
//! the router sends them, with `@ufrag@` replaced by the participant's ufrag so that a binding
//! request can name it.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use parley_fuzz::sfu;
use parley_sfu::shard::ShardInput;
use parley_sfu::stun::{is_stun, local_ufrag};

/// Datagrams one input may send (each may run str0m's DTLS).
const MAX_DATAGRAMS: usize = 16;

fn offer() -> &'static str {
    static OFFER: OnceLock<String> = OnceLock::new();
    OFFER.get_or_init(|| sfu::client_offer(false))
}

fn check_stun(datagram: &[u8]) {
    let Some(ufrag) = local_ufrag(datagram) else { return };
    assert!(is_stun(datagram), "a ufrag read from a datagram that is not STUN");
    assert!(!ufrag.contains(':'), "the ufrag is the part before the colon: {ufrag:?}");
    // It is borrowed from the datagram itself, after the 20-byte header.
    let (start, end) = (datagram.as_ptr() as usize, datagram.as_ptr() as usize + datagram.len());
    assert!(ufrag.as_ptr() as usize >= start + 20 && ufrag.as_ptr() as usize + ufrag.len() <= end);
}

/// `data` cut into length-prefixed datagrams.
fn datagrams(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while out.len() < MAX_DATAGRAMS {
        let Some((length, rest)) = data.split_first_chunk::<2>() else { break };
        let length = usize::from(u16::from_be_bytes(*length)).min(rest.len());
        let (datagram, rest) = rest.split_at(length);
        out.push(datagram);
        data = rest;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, data)) = parley_fuzz::mode(data) else { return };
    if mode % 2 == 0 {
        check_stun(data);
        return;
    }
    let _runtime = parley_fuzz::runtime().enter();
    let mut shard = sfu::shard();
    let (request, mut answer, _signals) = sfu::join_request(1, offer().to_owned());
    shard.handle(ShardInput::Join(request));
    let answer = match answer.try_recv() {
        Ok(Ok(answer)) => answer,
        other => panic!("the shard refused a str0m offer: {other:?}"),
    };
    let ufrag = sfu::ice_ufrag(&answer).unwrap_or_else(|| panic!("an answer without a ufrag: {answer}"));
    let sources: [SocketAddr; 2] = [([192, 0, 2, 1], 50_000).into(), ([192, 0, 2, 2], 50_001).into()];
    for datagram in datagrams(data) {
        let Some((source, contents)) = datagram.split_first() else { continue };
        let contents = replace(contents, b"@ufrag@", ufrag.as_bytes());
        check_stun(&contents);
        let source = sources[usize::from(*source) % sources.len()];
        shard.handle(ShardInput::Packet { source, contents, at: Instant::now() });
    }
});

/// `bytes` with every `from` replaced by `to`.
fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        if rest.starts_with(from) {
            out.extend_from_slice(to);
            rest = &rest[from.len()..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}
