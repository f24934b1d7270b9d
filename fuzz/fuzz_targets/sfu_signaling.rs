//! The SFU's signaling socket (`/rtc`): each line of the input is one client text frame, read by
//! `parse_client_frame` as the socket reads it. The first `offer` joins a room on a shard with
//! its SDP (str0m parses it and the shard answers, as in `session`); later frames go to the shard
//! as the session sends them (`answer`, `layer`, `leave`). A further `offer` is a second client
//! joining the same room, so that the fuzzer also drives a room with two participants. Nothing
//! goes on the wire: the shard's socket is bound but ICE never gets far enough to send.

#![no_main]

use libfuzzer_sys::fuzz_target;
use parley_fuzz::sfu;
use parley_sfu::shard::{ParticipantId, ShardInput};
use parley_sfu::signaling::{parse_client_frame, ClientFrame};

/// The socket's frame cap (`CLIENT_FRAME_MAX`): a larger frame never reaches the parser.
const CLIENT_FRAME_MAX: usize = 64 * 1024;
/// Participants one input may add (each join builds an `Rtc` with its own DTLS certificate).
const MAX_JOINS: u64 = 3;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The shard's socket is a Tokio one: its sends need the runtime entered.
    let _runtime = parley_fuzz::runtime().enter();
    let mut shard = sfu::shard();
    let mut current: Option<ParticipantId> = None;
    let mut joined = 0;
    // The participants' signal channels stay open, as their sockets would.
    let mut signals = Vec::new();
    for line in text.lines().filter(|line| line.len() <= CLIENT_FRAME_MAX) {
        let Ok(frame) = parse_client_frame(line) else { continue };
        match (frame, current) {
            (ClientFrame::Offer { sdp }, _) if joined < MAX_JOINS => {
                joined += 1;
                let (request, mut answer, signals_rx) = sfu::join_request(joined, sdp);
                signals.push(signals_rx);
                shard.handle(ShardInput::Join(request));
                // The shard answers at once, with an SDP answer or a refusal: a join that neither
                // answers nor refuses would leave the client waiting forever.
                match answer.try_recv() {
                    Ok(Ok(_)) => current = Some(joined),
                    Ok(Err(_)) => {}
                    Err(error) => panic!("a join got no answer: {error}"),
                }
            }
            (ClientFrame::Offer { .. }, _) | (_, None) | (ClientFrame::Ping, _) => {}
            (ClientFrame::Answer { sdp }, Some(participant)) => shard.handle(ShardInput::Answer { participant, sdp }),
            (ClientFrame::Layer { mid, rid }, Some(participant)) => {
                shard.handle(ShardInput::Layer { participant, mid, rid })
            }
            (ClientFrame::Leave, Some(participant)) => {
                shard.handle(ShardInput::Leave { participant, said: true });
                current = None;
            }
        }
    }
    // The input ends as the sockets go away without a word: the shard keeps their places for the
    // rejoin grace.
    for participant in 1..=joined {
        shard.handle(ShardInput::Leave { participant, said: false });
    }
});
