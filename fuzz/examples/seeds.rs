//! Writes the seed corpora, `seeds/<target>/`: a few well-formed inputs of each kind a target
//! takes (and a few near misses), so that each run starts where the parsers do real work instead
//! of rediscovering JSON and base64. Run after changing a target's input format:
//!   cargo run -p parley-fuzz --example seeds
//! Keys are random on each run (except the token signing key, which is fixed), so the files
//! change; what matters is their shape.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use parley_api::auth::tokens::{RefreshToken, SfuRoom};
use parley_client_core::keys::verify_device_keys;
use parley_client_core::payloads::{MegolmEnvelope, ATTACHMENT_ALGORITHM};
use parley_client_core::vodozemac::megolm::{GroupSession, SessionConfig};
use parley_client_core::{
    AttachmentEncryptor, ClaimedOneTimeKey, DeviceAddress, MessageContent, OwnDevice, PublishedDevice, Thumbnail,
    UserDevices,
};
use parley_domain::call::{CallEvent, CallStatus, LeaveReason};
use parley_domain::chat::{ChatEvent, ChatKind, MemberEntry, Role};
use parley_domain::envelope::EventEnvelope;
use parley_domain::sealed::{self, KEY_BYTES, NONCE_BYTES};
use parley_domain::session::{RevocationReason, SessionEvent};
use parley_fuzz::e2ee::{BOB, CAROL, CHAT, UPLOADER};
use parley_fuzz::{sfu, tokens};
use serde_json::json;
use str0m::change::SdpOffer;
use str0m::Rtc;
use uuid::Uuid;

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    sfu_signaling(&Seeds::new(&root, "sfu_signaling")?)?;
    sfu_stun(&Seeds::new(&root, "sfu_stun")?)?;
    sfu_join_token(&Seeds::new(&root, "sfu_join_token")?)?;
    api_access_token(&Seeds::new(&root, "api_access_token")?)?;
    api_refresh_token(&Seeds::new(&root, "api_refresh_token")?)?;
    api_ws_frame(&Seeds::new(&root, "api_ws_frame")?)?;
    media_range(&Seeds::new(&root, "media_range")?)?;
    media_upload(&Seeds::new(&root, "media_upload")?)?;
    message_body(&Seeds::new(&root, "message_body")?)?;
    e2ee_message(&Seeds::new(&root, "e2ee_message")?)?;
    e2ee_to_device(&Seeds::new(&root, "e2ee_to_device")?)?;
    e2ee_keys(&Seeds::new(&root, "e2ee_keys")?)?;
    domain_events(&Seeds::new(&root, "domain_events")?)?;
    println!("seeds written under {}", root.display());
    Ok(())
}

/// One target's seed directory, emptied first so that renamed seeds do not linger.
struct Seeds {
    dir: PathBuf,
}

impl Seeds {
    fn new(root: &Path, target: &str) -> Result<Self> {
        let dir = root.join(target);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("emptying {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
        let path = self.dir.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    /// A seed of a target that reads a mode byte first.
    fn mode(&self, name: &str, mode: u8, bytes: impl AsRef<[u8]>) -> Result<()> {
        let mut seed = vec![mode];
        seed.extend_from_slice(bytes.as_ref());
        self.write(name, seed)
    }
}

/// A time far ahead, so that the seeds' tokens have not expired when the fuzzer reads them.
fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(4_102_444_800, 0).unwrap_or_default()
}

fn frame(value: serde_json::Value) -> String {
    value.to_string()
}

fn sfu_signaling(seeds: &Seeds) -> Result<()> {
    let offer = sfu::client_offer(false);
    let simulcast = sfu::client_offer(true);
    // A real answer, to an offer as the SFU would make one.
    let mut sfu_side = Rtc::builder().build(Instant::now());
    let sfu_offer = SdpOffer::from_sdp_string(&simulcast).map_err(|e| anyhow!("{e}"))?;
    let answer = sfu_side.sdp_api().accept_offer(sfu_offer).map_err(|e| anyhow!("{e}"))?.to_sdp_string();
    let lines = |frames: &[serde_json::Value]| frames.iter().map(|f| frame(f.clone())).collect::<Vec<_>>().join("\n");
    seeds.write(
        "join-and-leave",
        lines(&[json!({"type": "offer", "sdp": offer}), json!({"type": "ping"}), json!({"type": "leave"})]),
    )?;
    seeds.write(
        "simulcast-layers",
        lines(&[
            json!({"type": "offer", "sdp": simulcast}),
            json!({"type": "layer", "mid": "0", "rid": "l"}),
            json!({"type": "layer", "mid": "1", "rid": "h"}),
            json!({"type": "answer", "sdp": answer}),
        ]),
    )?;
    seeds.write(
        "two-participants",
        lines(&[
            json!({"type": "offer", "sdp": offer}),
            json!({"type": "offer", "sdp": simulcast}),
            json!({"type": "leave"}),
        ]),
    )?;
    seeds.write("not-an-offer-first", lines(&[json!({"type": "answer", "sdp": answer}), json!({"type": "pong"})]))?;
    seeds.write("broken-sdp", lines(&[json!({"type": "offer", "sdp": "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=-\r\n"})]))?;
    Ok(())
}

/// A STUN binding request whose USERNAME is `username` (RFC 5389 layout, no integrity).
fn binding_request(username: &[u8]) -> Vec<u8> {
    let padded = username.len().div_ceil(4) * 4;
    let mut out = vec![0x00, 0x01];
    out.extend_from_slice(&u16::try_from(4 + padded).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    out.extend_from_slice(&[7; 12]);
    out.extend_from_slice(&[0x00, 0x06]);
    out.extend_from_slice(&u16::try_from(username.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(username);
    out.resize(20 + 4 + padded, 0);
    out
}

fn sfu_stun(seeds: &Seeds) -> Result<()> {
    seeds.mode("binding-request", 0, binding_request(b"ourufrag:theirs"))?;
    seeds.mode("no-username", 0, &binding_request(b"")[..20])?;
    // Mode 1: datagrams for a joined participant, each a u16 length, then a source byte first.
    let datagram = |source: u8, bytes: &[u8]| {
        let mut out = u16::try_from(bytes.len() + 1).unwrap_or(u16::MAX).to_be_bytes().to_vec();
        out.push(source);
        out.extend_from_slice(bytes);
        out
    };
    let rtp = [0x80, 0x6f, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10, 0x12, 0x34, 0x56, 0x78, 1, 2, 3, 4];
    let dtls_hello = [0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0c, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut routed = datagram(0, &binding_request(b"@ufrag@:remote"));
    routed.extend(datagram(0, &rtp));
    routed.extend(datagram(0, &dtls_hello));
    routed.extend(datagram(1, &rtp));
    seeds.mode("routed-then-media", 1, routed)?;
    seeds.mode("unknown-ufrag", 1, datagram(1, &binding_request(b"nobody:remote")))?;
    Ok(())
}

fn sfu_join_token(seeds: &Seeds) -> Result<()> {
    let keys = tokens::api_keys();
    let (user, session, call) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
    let token = keys.issue_sfu_join(
        user,
        session,
        SfuRoom { call_id: call, kind: "video", node: None },
        Duration::from_secs(60),
        far_future(),
    )?;
    seeds.mode("valid", 0, &token)?;
    seeds.mode("valid-for-the-call", 2, &token)?;
    seeds.mode(
        "valid-for-another-call",
        2,
        keys.issue_sfu_join(
            user,
            session,
            SfuRoom { call_id: user, kind: "audio", node: None },
            Duration::from_secs(60),
            far_future(),
        )?,
    )?;
    seeds.mode(
        "expired",
        0,
        keys.issue_sfu_join(
            user,
            session,
            SfuRoom { call_id: call, kind: "video", node: None },
            Duration::from_secs(60),
            Utc::now() - chrono::Duration::hours(1),
        )?,
    )?;
    for (name, node) in [("valid-for-this-node", "sfu-0"), ("valid-for-another-node", "sfu-1")] {
        let room = SfuRoom { call_id: call, kind: "video", node: Some(node) };
        seeds.mode(name, 0, keys.issue_sfu_join(user, session, room, Duration::from_secs(60), far_future())?)?;
    }
    seeds.mode("access-token", 0, keys.issue_access(user, session, far_future())?)?;
    let claims = json!({
        "sub": user, "call": call, "kind": "video", "sid": session, "jti": Uuid::from_u128(4),
        "iss": "parley", "aud": "parley-sfu", "iat": 4_102_444_800_i64, "iat_ms": 4_102_444_800_000_i64,
        "exp": 4_102_444_860_i64, "typ": "sfu_join",
    });
    seeds.mode("claims", 1, claims.to_string())?;
    seeds.mode("claims-for-the-call", 3, claims.to_string())?;
    let mut audience_list = claims.clone();
    audience_list["aud"] = json!(["parley-sfu", "other"]);
    seeds.mode("claims-audience-list", 1, audience_list.to_string())?;
    let mut other_node = claims.clone();
    other_node["node"] = json!("sfu-1");
    seeds.mode("claims-another-node", 1, other_node.to_string())?;
    seeds.mode("header-none", 1, format!("{}\n{}", json!({"alg": "none", "typ": "JWT"}), claims))?;
    seeds.mode("header-hs256", 1, format!("{}\n{}", json!({"alg": "HS256", "typ": "JWT", "kid": "x"}), claims))?;
    Ok(())
}

fn api_access_token(seeds: &Seeds) -> Result<()> {
    let keys = tokens::api_keys();
    let (user, session) = (Uuid::from_u128(1), Uuid::from_u128(2));
    seeds.mode("valid", 0, keys.issue_access(user, session, far_future())?)?;
    seeds.mode("expired", 0, keys.issue_access(user, session, Utc::now() - chrono::Duration::hours(1))?)?;
    seeds.mode(
        "join-token",
        0,
        keys.issue_sfu_join(
            user,
            session,
            SfuRoom { call_id: user, kind: "video", node: None },
            Duration::from_secs(60),
            far_future(),
        )?,
    )?;
    seeds.mode("three-dots", 0, "a.b.c")?;
    let claims = json!({"sub": user, "sid": session, "iss": "parley", "iat": 4_102_444_800_i64, "exp": 4_102_445_700_i64, "typ": "access"});
    seeds.mode("claims", 1, claims.to_string())?;
    let mut other_type = claims.clone();
    other_type["typ"] = json!("sfu_join");
    seeds.mode("claims-join-type", 1, other_type.to_string())?;
    seeds.mode(
        "header-with-kid",
        1,
        format!("{}\n{}", json!({"alg": "EdDSA", "typ": "JWT", "kid": "0011223344556677"}), claims),
    )?;
    Ok(())
}

fn api_refresh_token(seeds: &Seeds) -> Result<()> {
    let token = RefreshToken::generate(Uuid::from_u128(5)).token;
    seeds.write("valid", &token)?;
    seeds.write("padded-with-space", format!("  {token}\n"))?;
    seeds.write(
        "hyphenated-session",
        format!("{}.{}", Uuid::from_u128(5), token.split_once('.').map(|(_, s)| s).unwrap_or("")),
    )?;
    seeds.write("short-secret", format!("{}.AAAA", Uuid::from_u128(5).simple()))?;
    Ok(())
}

fn api_ws_frame(seeds: &Seeds) -> Result<()> {
    let keys = tokens::api_keys();
    let token = keys.issue_access(Uuid::from_u128(1), Uuid::from_u128(2), far_future())?;
    seeds.mode("ping", 0, frame(json!({"type": "ping"})))?;
    seeds.mode("typing", 0, frame(json!({"type": "typing", "chat_id": Uuid::from_u128(9)})))?;
    seeds.mode("auth", 0, frame(json!({"type": "auth", "token": token})))?;
    seeds.mode("unknown-type", 0, frame(json!({"type": "subscribe", "chat_id": 1})))?;
    seeds.mode("feed-frame", 1, "F 41 42\n{\"type\":\"message\",\"data\":{},\"cursor\":\"42\"}")?;
    seeds.mode("ephemeral", 1, "E\n{\"type\":\"typing\"}")?;
    seeds.mode("negative-cursors", 1, "F -1 -9223372036854775808\n")?;
    Ok(())
}

fn media_range(seeds: &Seeds) -> Result<()> {
    let seed = |size: u64, header: &str| {
        let mut out = size.to_be_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out
    };
    seeds.write("first-ten", seed(100, "bytes=0-9"))?;
    seeds.write("suffix", seed(100, "bytes=-10"))?;
    seeds.write("open-ended", seed(100, "bytes=90-"))?;
    seeds.write("past-the-end", seed(100, "bytes=95-200"))?;
    seeds.write("empty-object", seed(0, "bytes=0-0"))?;
    seeds.write("huge-object", seed(u64::MAX, "bytes=18446744073709551614-18446744073709551615"))?;
    seeds.write("two-ranges", seed(100, "bytes=0-1,5-6"))?;
    Ok(())
}

fn media_upload(seeds: &Seeds) -> Result<()> {
    let field = |bytes: &[u8]| {
        let mut out = vec![u8::try_from(bytes.len()).unwrap_or(u8::MAX)];
        out.extend_from_slice(bytes);
        out
    };
    let step = |offset: &str, body: &[u8], flags: u8| [field(offset.as_bytes()), field(body), vec![flags]].concat();
    seeds.write(
        "three-chunks-and-a-range",
        [step("0", b"hello ", 0), step("6", b"resumable ", 2), step("16", b"world", 0), field(b"bytes=3-12")].concat(),
    )?;
    seeds.write(
        "broken-off-then-resumed",
        [step("0", b"first part", 1), step("0", b"stale offset", 0), step("10", b" second", 0), field(b"bytes=-4")]
            .concat(),
    )?;
    seeds.write(
        "over-the-cap",
        [step("0", &[b'x'; 200], 0), step("200", &[b'y'; 255], 2), field(b"bytes=0-")].concat(),
    )?;
    seeds.write(
        "odd-offsets",
        [step("+0", b"a", 0), step("00", b"b", 0), step("18446744073709551615", b"c", 0)].concat(),
    )?;
    Ok(())
}

fn message_body(seeds: &Seeds) -> Result<()> {
    seeds.mode("ciphertext", 0, STANDARD.encode(b"an Olm or Megolm envelope, opaque to the server"))?;
    seeds.mode("unpadded", 0, "YWJj")?;
    seeds.mode("bad-padding", 0, "YQ=")?;
    let sealed = sealed::seal(&[1; KEY_BYTES], &[9; NONCE_BYTES], b"ciphertext from the client");
    seeds.mode("sealed", 1, serde_json::to_string(&sealed)?)?;
    seeds.mode("sealed-short-nonce", 1, frame(json!({"nonce": "AAAA", "data": sealed.data})))?;
    Ok(())
}

fn e2ee_message(seeds: &Seeds) -> Result<()> {
    // Mode 0 and 1: real Megolm messages (of a session the target's Bob does not know; mode 1
    // names his with `@session_id@`).
    let mut session = GroupSession::new(SessionConfig::version_1());
    let plaintext = json!({"chat_id": CHAT, "type": "text", "body": "hello"}).to_string();
    let body = session.encrypt(&plaintext).to_base64();
    let envelope = MegolmEnvelope { session_id: session.session_id(), body: body.clone() };
    seeds.mode("ciphertext", 0, STANDARD.encode(serde_json::to_vec(&envelope)?))?;
    seeds.mode("envelope", 1, frame(json!({"session_id": "@session_id@", "body": body})))?;
    // Mode 2: plaintexts.
    seeds.mode("text", 2, &plaintext)?;
    let mut encryptor = AttachmentEncryptor::new()?;
    let mut file = *b"attachment bytes";
    encryptor.update(&mut file)?;
    let info = encryptor.finish().into_info(Uuid::from_u128(7), "image/png", "cat.png");
    let thumbnail = Thumbnail {
        content_type: "image/jpeg".into(),
        width: 32,
        height: 24,
        data: STANDARD.encode([0xFF, 0xD8, 0xFF]),
    };
    let content =
        MessageContent::File { file: info.clone(), body: "a cat".into(), thumbnail: Some(Box::new(thumbnail)) };
    let mut with_file = serde_json::to_value(&content)?;
    with_file["chat_id"] = json!(CHAT);
    seeds.mode("file-with-thumbnail", 2, with_file.to_string())?;
    let mut bad_info = serde_json::to_value(&info)?;
    bad_info["algorithm"] = json!(ATTACHMENT_ALGORITHM);
    bad_info["key"] = json!("c2hvcnQ");
    seeds.mode("file-short-key", 2, json!({"chat_id": CHAT, "type": "file", "file": bad_info}).to_string())?;
    seeds.mode("another-chat", 2, json!({"chat_id": Uuid::from_u128(1), "type": "text", "body": "hi"}).to_string())?;
    Ok(())
}

fn e2ee_to_device(seeds: &Seeds) -> Result<()> {
    // A real room key share between two devices (random keys: Bob's copy in the target cannot
    // read it, but its shape is right).
    let (alice_address, bob_address) = (DeviceAddress::new(Uuid::from_u128(0xA), Uuid::from_u128(0xAD)), BOB);
    let mut alice = OwnDevice::new(alice_address.user_id, alice_address.device_id);
    let mut bob = OwnDevice::new(bob_address.user_id, bob_address.device_id);
    let bob_upload = bob.keys_upload(None)?;
    bob.mark_published();
    let listed = PublishedDevice {
        device_id: bob_address.device_id,
        display_name: None,
        identity_keys: bob_upload.identity_keys.clone(),
    };
    alice.observe_user_devices(&UserDevices { user_id: bob_address.user_id, devices: vec![listed] });
    let one_time_key = bob_upload.one_time_keys.first().ok_or_else(|| anyhow!("Bob has no one-time key"))?;
    let claimed = ClaimedOneTimeKey {
        user_id: bob_address.user_id,
        device_id: bob_address.device_id,
        key_id: one_time_key.key_id.clone(),
        curve25519: one_time_key.curve25519.clone(),
        signature: one_time_key.signature.clone(),
        fallback: false,
        remaining: Some(49),
    };
    alice.prepare_send(CHAT, &[bob_address].into(), 1_800_000_000)?;
    let share = alice.share_room_key(CHAT, &[claimed])?;
    let ciphertext = &share.messages.first().ok_or_else(|| anyhow!("no share"))?.ciphertext;
    seeds.mode("pre-key-envelope", 0, ciphertext)?;
    let mut envelope: serde_json::Value = serde_json::from_str(ciphertext)?;
    envelope["sender_key"] = json!("@sender_key@");
    seeds.mode("pre-key-envelope-from-carol", 1, envelope.to_string())?;
    envelope["type"] = json!(1);
    seeds.mode("normal-envelope-from-carol", 1, envelope.to_string())?;
    // Mode 2: plaintexts Carol encrypts.
    let room_key = json!({
        "sender_user": CAROL.user_id, "sender_device": CAROL.device_id, "sender_ed25519": "@sender_ed25519@",
        "recipient_user": BOB.user_id, "recipient_device": BOB.device_id, "recipient_ed25519": "@recipient_ed25519@",
        "type": "parley.room_key",
        "content": {"algorithm": "parley.megolm.v1", "chat_id": CHAT, "session_id": "@spare_session_id@", "session_key": "@spare_session_key@"},
    });
    seeds.mode("room-key", 2, room_key.to_string())?;
    let mut mismatched = room_key.clone();
    mismatched["content"]["session_id"] = json!("@session_id@");
    seeds.mode("room-key-wrong-session-id", 2, mismatched.to_string())?;
    let mut other_sender = room_key.clone();
    other_sender["sender_device"] = json!(Uuid::from_u128(1));
    seeds.mode("room-key-other-sender", 2, other_sender.to_string())?;
    Ok(())
}

fn e2ee_keys(seeds: &Seeds) -> Result<()> {
    let uploader = OwnDevice::new(UPLOADER.user_id, UPLOADER.device_id);
    let mut upload = uploader.keys_upload(Some("laptop"))?;
    upload.one_time_keys.truncate(3);
    seeds.mode("upload", 0, serde_json::to_string(&upload)?)?;
    seeds.mode("upload-identity-only", 0, serde_json::to_string(&json!({"identity_keys": upload.identity_keys}))?)?;
    // Mode 1: a listing of two devices of one user, validly signed.
    let user = Uuid::from_u128(0x5E);
    let devices: Vec<PublishedDevice> = [0x51_u128, 0x52]
        .into_iter()
        .map(|id| {
            let device = OwnDevice::new(user, Uuid::from_u128(id));
            let upload = device.keys_upload(Some("phone"))?;
            let listed = PublishedDevice {
                device_id: Uuid::from_u128(id),
                display_name: upload.display_name,
                identity_keys: upload.identity_keys,
            };
            verify_device_keys(user, &listed)?;
            Ok(listed)
        })
        .collect::<Result<_>>()?;
    seeds.mode("listing", 1, serde_json::to_string(&UserDevices { user_id: user, devices })?)?;
    // Mode 2: a claimed key of Carol's (the target signs `@signature@`).
    let curve25519 = upload.one_time_keys.first().map(|k| k.curve25519.clone()).unwrap_or_default();
    let claimed = json!({
        "user_id": CAROL.user_id, "device_id": CAROL.device_id, "key_id": "AAAAAQ", "curve25519": curve25519,
        "signature": "@signature@", "fallback": false, "remaining": 9,
    });
    seeds.mode("claimed", 2, claimed.to_string())?;
    let mut fallback = claimed.clone();
    fallback["fallback"] = json!(true);
    seeds.mode("claimed-fallback", 2, fallback.to_string())?;
    let mut low_order = claimed.clone();
    low_order["curve25519"] = json!(STANDARD.encode([0u8; 32]).trim_end_matches('='));
    seeds.mode("claimed-zero-key", 2, low_order.to_string())?;
    Ok(())
}

fn envelope(
    aggregate_type: &str,
    aggregate_id: Uuid,
    event_type: &str,
    payload: &impl serde::Serialize,
) -> Result<String> {
    let envelope = EventEnvelope {
        event_id: EventEnvelope::id_for(aggregate_type, &aggregate_id.to_string(), 1),
        position: 1,
        aggregate_type: aggregate_type.into(),
        aggregate_id: aggregate_id.to_string(),
        sequence: 1,
        event_type: event_type.into(),
        event_version: "1".into(),
        payload: serde_json::value::to_raw_value(payload)?,
        metadata: serde_json::value::to_raw_value(&json!({"actor_id": Uuid::from_u128(1)}))?,
    };
    Ok(serde_json::to_string(&envelope)?)
}

fn domain_events(seeds: &Seeds) -> Result<()> {
    let at = DateTime::from_timestamp(1_800_000_000, 123_000_000).unwrap_or_default();
    let (call, chat, user) = (Uuid::from_u128(3), Uuid::from_u128(9), Uuid::from_u128(1));
    seeds.write(
        "call-ended",
        envelope("Call", call, "CallEnded", &CallEvent::CallEnded { chat_id: chat, status: CallStatus::Ended, at })?,
    )?;
    let left = CallEvent::ParticipantLeft { user_id: user, reason: LeaveReason::Removed, at };
    seeds.write("participant-left", envelope("Call", call, "ParticipantLeft", &left)?)?;
    let revoked = SessionEvent::SessionRevoked { reason: RevocationReason::RefreshTokenReused, revoked_at: at };
    seeds.write("session-revoked", envelope("Session", user, "SessionRevoked", &revoked)?)?;
    let created = ChatEvent::ChatCreated {
        chat_id: chat,
        kind: ChatKind::Group,
        name: Some("team".into()),
        created_by: user,
        members: vec![MemberEntry { user_id: user, role: Role::Admin }],
        created_at: at,
    };
    seeds.write("chat-created", envelope("Chat", chat, "ChatCreated", &created)?)?;
    let sent = json!({"MessageSent": {
        "message_id": Uuid::from_u128(11), "sender_id": user, "sender_device_id": Uuid::from_u128(12), "seq": 1,
        "client_msg_id": "c1", "body": sealed::seal(&[1; KEY_BYTES], &[0; NONCE_BYTES], b"x"),
        "algorithm": "parley.megolm.v1", "media_ids": [], "reply_to": null, "sent_at": at,
    }});
    seeds.write("message-sent", envelope("Chat", chat, "MessageSent", &sent)?)?;
    Ok(())
}
