//! What Parley's fuzz targets (`fuzz_targets/`) share: a runtime for the parsers that are async,
//! the key that signs the tokens they check, two E2EE parties that know each other, and the
//! fixed ids the seeds (`seeds/`, made by `examples/seeds.rs`) were written for.
//!
//! Set-up that cannot go wrong with a working build panics with a message: a target that cannot
//! start must say so, not fuzz nothing. Nothing here unwraps what the fuzzer sends.

use std::sync::OnceLock;

use tokio::runtime::{Builder, Runtime};

/// A current-thread Tokio runtime, made once per process: the parsers under test that are async
/// (token verification, the shard's socket, media storage) run on it.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("a Tokio runtime: {e}"))
    })
}

/// The input's first byte picks what a target does with the rest (most targets have several
/// ways in); `None` for an empty input.
pub fn mode(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(mode, rest)| (*mode, rest))
}

/// Reads an input as a sequence of fields, for targets that play several steps.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        let Some((byte, rest)) = self.rest.split_first() else { return 0 };
        self.rest = rest;
        *byte
    }

    /// The next field: a length byte and that many bytes (fewer at the end of the input).
    pub fn field(&mut self) -> &'a [u8] {
        let length = usize::from(self.byte()).min(self.rest.len());
        let (field, rest) = self.rest.split_at(length);
        self.rest = rest;
        field
    }
}

/// Replaces each `@name@` in `text` by its value: seeds and mutations name keys that only exist
/// in this process (they are random), so that checks that compare keys can pass and the fuzzer
/// reaches what follows them.
pub fn fill_in(text: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(text.to_owned(), |text, (name, value)| text.replace(&format!("@{name}@"), value))
}

/// Access tokens (api) and join tokens (SFU): the api's signing key, fixed so that committed
/// seeds carry valid signatures.
pub mod tokens {
    use std::time::Duration;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    use ed25519_dalek::{Signer, SigningKey};
    use parley_api::auth::tokens::TokenKeys;

    pub const ISSUER: &str = "parley";
    const SIGNING_SEED: [u8; 32] = [7; 32];
    pub const ACCESS_TTL: Duration = Duration::from_secs(900);

    pub fn signing_key() -> SigningKey {
        SigningKey::from_bytes(&SIGNING_SEED)
    }

    /// The api's token keys, as it loads them from `PARLEY_JWT_PRIVATE_KEY`.
    pub fn api_keys() -> TokenKeys {
        let pem = signing_key().to_pkcs8_pem(LineEnding::LF).unwrap_or_else(|e| panic!("a PEM of the test key: {e}"));
        TokenKeys::from_pem(&pem, ISSUER, ACCESS_TTL).unwrap_or_else(|e| panic!("the api's token keys: {e}"))
    }

    /// A JWT of exactly `header` and `claims` (JSON or not) with a valid signature of the
    /// signing key: a forged signature stops every token before its claims are read, so this is
    /// how the fuzzer reaches the claims' parsing and checks.
    pub fn sign_raw(header: &[u8], claims: &[u8]) -> String {
        let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        let signature = signing_key().sign(message.as_bytes());
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// Whether a claim (`iss`, `aud`) is `wanted` or a list holding it, as JWT allows.
    pub fn claim_names(claim: &serde_json::Value, wanted: &str) -> bool {
        claim == wanted || claim.as_array().is_some_and(|items| items.iter().any(|item| item == wanted))
    }

    /// `data` split at its first newline into a header and claims (no newline: the api's usual
    /// header, with `data` as the claims).
    pub fn header_and_claims(data: &[u8], usual_header: &[u8]) -> (Vec<u8>, Vec<u8>) {
        match data.iter().position(|b| *b == b'\n') {
            Some(at) => (data[..at].to_vec(), data[at + 1..].to_vec()),
            None => (usual_header.to_vec(), data.to_vec()),
        }
    }
}

/// End-to-end encryption: Bob (an `OwnDevice`, the code under test) and Carol, a bare vodozemac
/// account that Bob trusts, so that a target can encrypt whatever the fuzzer wrote (Olm to-device
/// plaintext, Megolm message plaintext) and hand it to Bob's decryption.
pub mod e2ee {
    use parley_client_core::canonical::device_keys_signing_input;
    use parley_client_core::keys::SignedIdentityKeys;
    use parley_client_core::payloads::{
        OlmEnvelope, OlmPlaintext, RoomKeyContent, ToDevicePayload, MEGOLM_ALGORITHM, OLM_ALGORITHM,
    };
    use parley_client_core::vodozemac::megolm::{GroupSession, SessionConfig as MegolmConfig};
    use parley_client_core::vodozemac::olm::{Account, SessionConfig as OlmConfig};
    use parley_client_core::vodozemac::{base64_encode, Curve25519PublicKey};
    use parley_client_core::{DeviceAddress, IncomingToDevice, OwnDevice, PublishedDevice, UserDevices};
    use uuid::Uuid;

    pub const BOB: DeviceAddress = DeviceAddress::new(Uuid::from_u128(0xB0B), Uuid::from_u128(0xB0BD));
    pub const CAROL: DeviceAddress = DeviceAddress::new(Uuid::from_u128(0xCA201), Uuid::from_u128(0xCA201D));
    pub const CHAT: Uuid = Uuid::from_u128(0xC4A7);
    /// The device whose key uploads the `e2ee_keys` seeds are (signed for its user and id).
    pub const UPLOADER: DeviceAddress = DeviceAddress::new(Uuid::from_u128(0xD0C), Uuid::from_u128(0xD0CD));
    /// What Bob's saved state is encrypted with between iterations.
    const STATE_KEY: [u8; 32] = [3; 32];

    pub struct Parties {
        /// Bob trusting Carol, with no Olm session yet (a to-device message starts one).
        bob_fresh: Vec<u8>,
        /// Bob holding the room key of `group`, sent by Carol, for `CHAT`. Kept from one input to the
        /// next: decrypting a chat message changes nothing in his state that the next outcome depends
        /// on (only how far his copy of the ratchet has advanced), and restoring him costs most of an
        /// input's time.
        pub keyed_bob: OwnDevice,
        pub carol: Account,
        /// Carol's outbound Megolm session for `CHAT`.
        pub group: GroupSession,
        /// Another Megolm session, whose key no one sent Bob yet (for room-key payloads).
        pub spare_group: GroupSession,
        pub bob_curve25519: Curve25519PublicKey,
        pub bob_ed25519: String,
        pub bob_one_time_key: Curve25519PublicKey,
    }

    impl Parties {
        pub fn new() -> Self {
            let mut bob = OwnDevice::new(BOB.user_id, BOB.device_id);
            let upload = bob.keys_upload(None).unwrap_or_else(|e| panic!("Bob's key upload: {e}"));
            let bob_one_time_key = upload
                .one_time_keys
                .first()
                .and_then(|key| Curve25519PublicKey::from_base64(&key.curve25519).ok())
                .unwrap_or_else(|| panic!("Bob has a one-time key"));
            bob.mark_published();
            let carol = Account::new();
            let report = bob.observe_user_devices(&carol_listing(&carol));
            assert_eq!(report.new_devices.len(), 1, "Bob trusts Carol on first sight: {report:?}");
            let bob_fresh = save(&bob);
            let group = GroupSession::new(MegolmConfig::version_1());
            let mut parties = Self {
                bob_fresh,
                carol,
                spare_group: GroupSession::new(MegolmConfig::version_1()),
                bob_curve25519: bob.identity_keys().curve25519,
                bob_ed25519: bob.identity_keys().ed25519.to_base64(),
                bob_one_time_key,
                group,
                keyed_bob: bob,
            };
            let room_key = ToDevicePayload::RoomKey(RoomKeyContent {
                algorithm: MEGOLM_ALGORITHM.to_owned(),
                chat_id: CHAT,
                session_id: parties.group.session_id(),
                session_key: parties.group.session_key().to_base64(),
            });
            let plaintext = serde_json::to_vec(&parties.plaintext_from_carol(room_key))
                .unwrap_or_else(|e| panic!("a room key plaintext: {e}"));
            let message = parties.to_device_from_carol(&plaintext);
            parties.keyed_bob.decrypt_to_device(&message).unwrap_or_else(|e| panic!("Bob takes Carol's room key: {e}"));
            parties
        }

        /// Bob before any message from Carol.
        pub fn fresh_bob(&self) -> OwnDevice {
            restore(&self.bob_fresh)
        }

        /// The values `fill_in` puts in seeds' `@name@`s.
        pub fn names(&self) -> [(&'static str, String); 6] {
            [
                ("sender_key", self.carol.curve25519_key().to_base64()),
                ("sender_ed25519", self.carol.ed25519_key().to_base64()),
                ("recipient_ed25519", self.bob_ed25519.clone()),
                ("session_id", self.group.session_id()),
                ("spare_session_id", self.spare_group.session_id()),
                ("spare_session_key", self.spare_group.session_key().to_base64()),
            ]
        }

        pub fn plaintext_from_carol(&self, payload: ToDevicePayload) -> OlmPlaintext {
            OlmPlaintext {
                sender_user: CAROL.user_id,
                sender_device: CAROL.device_id,
                sender_ed25519: self.carol.ed25519_key().to_base64(),
                recipient_user: BOB.user_id,
                recipient_device: BOB.device_id,
                recipient_ed25519: self.bob_ed25519.clone(),
                payload,
            }
        }

        /// `plaintext` (any bytes) in a pre-key Olm message from Carol to fresh Bob, as the
        /// server delivers it.
        pub fn to_device_from_carol(&self, plaintext: &[u8]) -> IncomingToDevice {
            let mut session = self
                .carol
                .create_outbound_session(OlmConfig::version_1(), self.bob_curve25519, self.bob_one_time_key)
                .unwrap_or_else(|e| panic!("an Olm session from Carol to Bob: {e}"));
            let message = session.encrypt(plaintext).unwrap_or_else(|e| panic!("Olm encryption: {e}"));
            let (message_type, body) = message.to_parts();
            let envelope = OlmEnvelope {
                algorithm: OLM_ALGORITHM.to_owned(),
                sender_key: self.carol.curve25519_key().to_base64(),
                message_type: u8::try_from(message_type).unwrap_or(u8::MAX),
                body: base64_encode(body),
            };
            let ciphertext = serde_json::to_string(&envelope).unwrap_or_else(|e| panic!("an Olm envelope: {e}"));
            incoming_from_carol(ciphertext)
        }
    }

    impl Default for Parties {
        fn default() -> Self {
            Self::new()
        }
    }

    /// A to-device message from Carol with this ciphertext, as `GET /to-device` lists it.
    pub fn incoming_from_carol(ciphertext: String) -> IncomingToDevice {
        IncomingToDevice {
            id: Uuid::from_u128(1),
            sender_id: CAROL.user_id,
            sender_device_id: CAROL.device_id,
            ciphertext,
        }
    }

    /// Carol's device as the key directory lists it, self-signed.
    fn carol_listing(carol: &Account) -> UserDevices {
        let (curve25519, ed25519) = (carol.curve25519_key().to_base64(), carol.ed25519_key().to_base64());
        let signed = device_keys_signing_input(CAROL.user_id, CAROL.device_id, &curve25519, &ed25519)
            .unwrap_or_else(|e| panic!("Carol's signing input: {e}"));
        let signature = carol.sign(signed).to_base64();
        UserDevices {
            user_id: CAROL.user_id,
            devices: vec![PublishedDevice {
                device_id: CAROL.device_id,
                display_name: None,
                identity_keys: SignedIdentityKeys { curve25519, ed25519, signature },
            }],
        }
    }

    fn save(device: &OwnDevice) -> Vec<u8> {
        device.to_encrypted_bytes(&STATE_KEY).unwrap_or_else(|e| panic!("saving a device: {e}"))
    }

    /// A new copy of a saved device, so that each input starts from the same state.
    fn restore(bytes: &[u8]) -> OwnDevice {
        OwnDevice::from_encrypted_bytes(bytes, &STATE_KEY).unwrap_or_else(|e| panic!("restoring a device: {e}"))
    }
}

/// The SFU: a shard as the SFU's main builds one, on a bound (but, in these targets, silent)
/// UDP socket.
pub mod sfu {
    use std::net::SocketAddr;
    use std::sync::{Arc, OnceLock};
    use std::time::{Duration, Instant};

    use parley_sfu::metrics::SfuMetrics;
    use parley_sfu::shard::{JoinError, JoinRequest, ParticipantId, Shard, ShardSettings, Signal};
    use str0m::media::{Direction, MediaKind};
    use str0m::Rtc;
    use tokio::net::UdpSocket;
    use tokio::sync::{mpsc, oneshot};
    use uuid::Uuid;

    pub const CALL_ID: Uuid = Uuid::from_u128(1);

    struct Fixed {
        socket: Arc<UdpSocket>,
        advertised: SocketAddr,
        metrics: Arc<SfuMetrics>,
    }

    fn fixed() -> &'static Fixed {
        static FIXED: OnceLock<Fixed> = OnceLock::new();
        FIXED.get_or_init(|| {
            let socket = super::runtime()
                .block_on(UdpSocket::bind("127.0.0.1:0"))
                .unwrap_or_else(|e| panic!("a local UDP socket for the shard: {e}"));
            let advertised = socket.local_addr().unwrap_or_else(|e| panic!("its address: {e}"));
            let metrics = SfuMetrics::new().unwrap_or_else(|e| panic!("the SFU's metrics: {e}"));
            Fixed { socket: Arc::new(socket), advertised, metrics: Arc::new(metrics) }
        })
    }

    /// A new, empty shard. Its routes and reports go nowhere (their receivers are gone, as when
    /// the SFU shuts down; the shard ignores that).
    pub fn shard() -> Shard {
        let fixed = fixed();
        let (routes, _) = mpsc::unbounded_channel();
        let (reports, _) = mpsc::unbounded_channel();
        Shard::new(ShardSettings {
            drop_every_nth_rtp: 0,
            socket: Arc::clone(&fixed.socket),
            advertised: fixed.advertised,
            peer_timeout: Duration::from_secs(60),
            rejoin_grace: Duration::from_secs(10),
            index: 0,
            routes,
            reports,
            metrics: Arc::clone(&fixed.metrics),
        })
    }

    /// A join of `participant` (user `participant` too) to `CALL_ID` with `offer_sdp`, and where
    /// its answer and signals will arrive.
    pub fn join_request(
        participant: ParticipantId,
        offer_sdp: String,
    ) -> (JoinRequest, oneshot::Receiver<Result<String, JoinError>>, mpsc::UnboundedReceiver<Signal>) {
        let (signal, signals) = mpsc::unbounded_channel();
        let (answered, answer) = oneshot::channel();
        let request = JoinRequest {
            participant,
            call_id: CALL_ID,
            user_id: Uuid::from_u128(u128::from(participant)),
            session_id: Uuid::from_u128(u128::from(participant) + 100),
            issued_ms: 0,
            video: true,
            offer_sdp,
            signal,
            answered,
        };
        (request, answer, signals)
    }

    /// A browser-like offer publishing audio and video (with three simulcast layers if
    /// `simulcast`), as str0m writes it.
    pub fn client_offer(simulcast: bool) -> String {
        let mut rtc = Rtc::builder().build(Instant::now());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, Some("stream".into()), Some("audio".into()), None);
        let layers = simulcast.then(|| {
            let mut layers = str0m::media::Simulcast::new();
            layers.send = ["h", "m", "l"].into_iter().map(str0m::media::SimulcastLayer::new).collect();
            layers
        });
        api.add_media(MediaKind::Video, Direction::SendOnly, Some("stream".into()), Some("video".into()), layers);
        match api.apply() {
            Some((offer, _)) => offer.to_sdp_string(),
            None => panic!("str0m made no offer"),
        }
    }

    /// The `a=ice-ufrag:` of an SDP.
    pub fn ice_ufrag(sdp: &str) -> Option<&str> {
        sdp.lines().find_map(|line| line.trim_end().strip_prefix("a=ice-ufrag:"))
    }
}
