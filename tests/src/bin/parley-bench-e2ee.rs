//! `parley-bench-e2ee [BASE_URL]`: end-to-end encryption through a running stack, with
//! `parley-client-core` doing all the cryptography, as a real client does. Prints, in one run:
//! 1. **Room keys for a 1,000-device group.** Setup (not timed): `BENCH_E2EE_USERS` users with
//!    `BENCH_E2EE_DEVICES_PER_USER` logins each, every login a device that publishes its keys and
//!    holds a WebSocket of its own; per round, a new sender (one device) creates a group with all
//!    of them and reads their device lists. Timed: one `POST /keys/claim` for every device, the
//!    core's `prepare_send` + `share_room_key` (one new Olm session per device), the batch by
//!    `POST /to-device` (one request; larger than 4 MiB would be split: `TO_DEVICE_REQUEST_BYTES`),
//!    until every recipient device has decrypted its `to_device` frame (each device's own socket).
//! 2. **Messages/s through the encrypted path** for one chat (a sender and a recipient, one device
//!    each, the recipient on a WebSocket): encrypt → POST → `message.created` frame → decrypt, with
//!    Megolm rotation every 100 messages (each rotation sends the new room key by Olm), side by side
//!    with the same loop unencrypted (base64 of the same plaintext JSON, no crypto), alternating
//!    runs, same chat and concurrency (`BENCH_CONCURRENCY`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use base64::Engine;
use futures::future::join_all;
use futures::StreamExt;
use parley_client_core::payloads::{MegolmPlaintext, MEGOLM_ALGORITHM};
use parley_client_core::{
    ClaimedOneTimeKey, CoreError, DeviceAddress, IncomingToDevice, MessageContent, OutgoingToDevice, OwnDevice,
    UserDevices,
};
use parley_tests::bench::{cpu_seconds, cpu_ticks, env_usize, percentile};
use parley_tests::{unique_email, Socket, PASSWORD};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The unencrypted loop's `algorithm`: the server stores it and does not look inside.
const PLAIN_ALGORITHM: &str = "parley.plain.bench";

fn now_unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One WebSocket per device, plus the HTTP pool: more than the usual 1,024 descriptors.
fn raise_fd_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Sends `request`, checks the status, parses the body.
async fn call<T: DeserializeOwned>(request: reqwest::RequestBuilder, expected: &[u16], what: &str) -> Result<T> {
    let response = request.send().await.with_context(|| what.to_owned())?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    ensure!(expected.contains(&status), "{what}: {status} {text}");
    serde_json::from_str(&text).with_context(|| format!("{what}: {text}"))
}

/// A signed-in session: a device.
#[derive(Clone)]
struct Login {
    user_id: Uuid,
    device_id: Uuid,
    token: String,
}

impl Login {
    fn address(&self) -> DeviceAddress {
        DeviceAddress::new(self.user_id, self.device_id)
    }
}

#[derive(Deserialize)]
struct AuthAnswer {
    user: UserRef,
    device_id: Uuid,
    access_token: String,
}

#[derive(Deserialize)]
struct UserRef {
    id: Uuid,
}

impl From<AuthAnswer> for Login {
    fn from(answer: AuthAnswer) -> Self {
        Self { user_id: answer.user.id, device_id: answer.device_id, token: answer.access_token }
    }
}

/// Registers a user and signs it in `devices - 1` more times: one login per device.
async fn user_with_devices(http: &reqwest::Client, base: &str, name: &str, devices: usize) -> Result<Vec<Login>> {
    let email = unique_email("e2ee");
    let body = json!({"name": name, "email": email, "password": PASSWORD});
    let first: AuthAnswer = call(http.post(format!("{base}/auth/register")).json(&body), &[201], "register").await?;
    let mut logins = vec![Login::from(first)];
    for _ in 1..devices {
        let body = json!({"email": email, "password": PASSWORD});
        let next: AuthAnswer = call(http.post(format!("{base}/auth/login")).json(&body), &[200], "login").await?;
        logins.push(next.into());
    }
    Ok(logins)
}

/// A new device of the core for `login`, its keys published (`PUT /keys/devices/{device_id}`).
async fn publish_device(http: &reqwest::Client, base: &str, login: &Login) -> Result<OwnDevice> {
    let mut device = OwnDevice::new(login.user_id, login.device_id);
    let upload = device.keys_upload(None)?;
    let _: serde_json::Value = call(
        http.put(format!("{base}/keys/devices/{}", login.device_id)).bearer_auth(&login.token).json(&upload),
        &[200],
        "publish keys",
    )
    .await?;
    device.mark_published();
    Ok(device)
}

#[derive(Deserialize)]
struct Created {
    id: Uuid,
}

/// A group of `admin` and `members` (added 200 per request after the first 200).
async fn create_group(http: &reqwest::Client, base: &str, admin: &Login, members: &[Uuid]) -> Result<Uuid> {
    let first = &members[..members.len().min(200)];
    let body = json!({"type": "group", "name": "E2EE bench", "member_ids": first});
    let chat: Created =
        call(http.post(format!("{base}/chats")).bearer_auth(&admin.token).json(&body), &[201], "create group").await?;
    for rest in members[first.len()..].chunks(200) {
        let _: serde_json::Value = call(
            http.post(format!("{base}/chats/{}/members", chat.id))
                .bearer_auth(&admin.token)
                .json(&json!({"user_ids": rest})),
            &[200],
            "add members",
        )
        .await?;
    }
    Ok(chat.id)
}

#[derive(Deserialize)]
struct QueryAnswer {
    users: Vec<UserDevices>,
}

#[derive(Deserialize)]
struct ClaimAnswer {
    keys: Vec<ClaimedOneTimeKey>,
}

#[derive(Serialize)]
struct ToDeviceBatch<'a> {
    messages: &'a [OutgoingToDevice],
}

/// `POST /keys/claim` for `devices`.
async fn claim(http: &reqwest::Client, base: &str, login: &Login, devices: &[DeviceAddress]) -> Result<String> {
    let refs: Vec<_> = devices.iter().map(|d| json!({"user_id": d.user_id, "device_id": d.device_id})).collect();
    let response = http
        .post(format!("{base}/keys/claim"))
        .bearer_auth(&login.token)
        .json(&json!({ "devices": refs }))
        .send()
        .await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    ensure!(status == 200, "claim keys: {status} {text}");
    Ok(text)
}

/// The api's body limit for `POST /to-device` (4 MiB): a 1,000-device room key (about 1.6 MB) is
/// one request; the api commits it as one batch of several events that each fit a NATS message.
const TO_DEVICE_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// `POST /to-device` bodies for `messages`, each under [`TO_DEVICE_REQUEST_BYTES`].
fn to_device_bodies(messages: &[OutgoingToDevice]) -> Result<Vec<Vec<u8>>> {
    let mut bodies = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, message) in messages.iter().enumerate() {
        let size = message.ciphertext.len() + 200;
        if i > start && bytes + size > TO_DEVICE_REQUEST_BYTES {
            bodies.push(serde_json::to_vec(&ToDeviceBatch { messages: &messages[start..i] })?);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        bodies.push(serde_json::to_vec(&ToDeviceBatch { messages: &messages[start..] })?);
    }
    Ok(bodies)
}

/// `POST /to-device` of every body at once.
async fn send_to_device(http: &reqwest::Client, base: &str, login: &Login, bodies: Vec<Vec<u8>>) -> Result<()> {
    let requests = bodies.into_iter().map(|body| async move {
        let response = http
            .post(format!("{base}/to-device"))
            .bearer_auth(&login.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        ensure!(status == 200 || status == 202, "send to-device: {status} {text}");
        Ok(())
    });
    join_all(requests).await.into_iter().collect()
}

/// A frame, with its data left unparsed until its type is known.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    data: Option<Box<RawValue>>,
}

/// A recipient device decrypted (or failed to decrypt) its room key.
struct KeyArrival {
    at: Instant,
    /// Parsing the frame's data and `decrypt_to_device`.
    decrypt: Duration,
    error: Option<String>,
}

/// A device's socket: decrypts every `to_device` frame with the device's core state.
fn listen_for_room_keys(
    mut socket: Socket,
    device: Arc<Mutex<OwnDevice>>,
    arrivals: mpsc::UnboundedSender<KeyArrival>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok(Some(text)) = socket.next_text(Duration::from_secs(3600)).await {
            let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
            let (true, Some(data)) = (frame.kind == "to_device", frame.data) else { continue };
            let started = Instant::now();
            let result =
                serde_json::from_str::<IncomingToDevice>(data.get()).map_err(anyhow::Error::from).and_then(|message| {
                    Ok(device.lock().unwrap_or_else(|p| p.into_inner()).decrypt_to_device(&message)?)
                });
            let decrypt = started.elapsed();
            let arrival = KeyArrival { at: Instant::now(), decrypt, error: result.err().map(|e| e.to_string()) };
            if arrivals.send(arrival).is_err() {
                return;
            }
        }
    })
}

/// The 1,000 recipient devices: their logins, core states and sockets.
struct Crowd {
    users: Vec<Uuid>,
    logins: Vec<Login>,
    devices: Vec<Arc<Mutex<OwnDevice>>>,
    listeners: Vec<tokio::task::JoinHandle<()>>,
    arrivals: mpsc::UnboundedReceiver<KeyArrival>,
}

async fn crowd(http: &reqwest::Client, base: &str, users: usize, per_user: usize) -> Result<Crowd> {
    let started = Instant::now();
    let accounts: Vec<Vec<Login>> = futures::stream::iter(0..users)
        .map(|i| async move { user_with_devices(http, base, &format!("Member {i}"), per_user).await })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let users: Vec<Uuid> = accounts.iter().map(|logins| logins[0].user_id).collect();
    let logins: Vec<Login> = accounts.into_iter().flatten().collect();
    let signed_in = started.elapsed();
    let devices: Vec<Arc<Mutex<OwnDevice>>> = futures::stream::iter(&logins)
        .map(|login| async move { publish_device(http, base, login).await.map(|d| Arc::new(Mutex::new(d))) })
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let published = started.elapsed() - signed_in;
    let (sender, arrivals) = mpsc::unbounded_channel();
    let sockets: Vec<Socket> = futures::stream::iter(&logins)
        .map(|login| Socket::connect(base, &login.token, None))
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let listeners = sockets
        .into_iter()
        .zip(&devices)
        .map(|(socket, device)| listen_for_room_keys(socket, Arc::clone(device), sender.clone()))
        .collect();
    eprintln!(
        "setup: {} devices of {} users signed in in {:.1} s, keys published in {:.1} s, sockets connected in {:.1} s",
        logins.len(),
        users.len(),
        signed_in.as_secs_f64(),
        published.as_secs_f64(),
        (started.elapsed() - signed_in - published).as_secs_f64()
    );
    Ok(Crowd { users, logins, devices, listeners, arrivals })
}

/// One timed room-key round's measurements.
struct KeyRound {
    devices: usize,
    /// `POST /keys/query` for every member, and the core verifying every listed device.
    query: Duration,
    verify_listing: Duration,
    total: Duration,
    claim: Duration,
    /// `prepare_send`, parsing the claim answer, `share_room_key`, serialising the batch.
    client: Duration,
    post: Duration,
    /// `POST /to-device` requests the batch took.
    requests: usize,
    /// From the `POST /to-device` answer to the last device's decrypted key.
    delivery: Duration,
    decrypt_sum: Duration,
    /// When each device had the key, after the `POST /to-device` answer (negative = before it).
    arrivals: Vec<Duration>,
    fallback_keys: usize,
}

async fn room_key_round(http: &reqwest::Client, base: &str, crowd: &mut Crowd, round: usize) -> Result<KeyRound> {
    // Setup, not timed: a sender of its own (one device) in a new group with every member.
    let sender_login = user_with_devices(http, base, &format!("Sender {round}"), 1).await?.remove(0);
    let mut sender = publish_device(http, base, &sender_login).await?;
    let chat = create_group(http, base, &sender_login, &crowd.users).await?;
    let query_started = Instant::now();
    let listing: QueryAnswer = call(
        http.post(format!("{base}/keys/query"))
            .bearer_auth(&sender_login.token)
            .json(&json!({"user_ids": crowd.users})),
        &[200],
        "query keys",
    )
    .await?;
    let query = query_started.elapsed();
    let verify_started = Instant::now();
    for user in &listing.users {
        let report = sender.observe_user_devices(user);
        ensure!(report.rejected_devices.is_empty(), "listed devices refused: {:?}", report.rejected_devices);
    }
    let verify_listing = verify_started.elapsed();
    let recipients: BTreeSet<DeviceAddress> = crowd.logins.iter().map(Login::address).collect();
    // Every recipient learns the new sender's device, as a client does before accepting its messages.
    let sender_listing: UserDevices = call(
        http.get(format!("{base}/keys/users/{}", sender_login.user_id)).bearer_auth(&crowd.logins[0].token),
        &[200],
        "sender's devices",
    )
    .await?;
    for device in &crowd.devices {
        device.lock().unwrap_or_else(|p| p.into_inner()).observe_user_devices(&sender_listing);
    }
    // Let the group's own frames (chat created, members) pass, and forget stale arrivals.
    tokio::time::sleep(Duration::from_secs(1)).await;
    while crowd.arrivals.try_recv().is_ok() {}

    // Timed.
    let started = Instant::now();
    let preparation = sender.prepare_send(chat, &recipients, now_unix_secs())?;
    ensure!(
        preparation.needs_one_time_key.len() == recipients.len(),
        "{} of {} devices need a one-time key",
        preparation.needs_one_time_key.len(),
        recipients.len()
    );
    let mut client = started.elapsed();
    let claim_started = Instant::now();
    let claimed = claim(http, base, &sender_login, &preparation.needs_one_time_key).await?;
    let claim_time = claim_started.elapsed();
    let client_started = Instant::now();
    let claimed: ClaimAnswer = serde_json::from_str(&claimed)?;
    let share = sender.share_room_key(chat, &claimed.keys)?;
    ensure!(
        share.messages.len() == recipients.len(),
        "room key encrypted for {} of {} devices ({} without a key, {} rejected)",
        share.messages.len(),
        recipients.len(),
        share.devices_without_one_time_key.len(),
        share.rejected_one_time_keys.len()
    );
    let bodies = to_device_bodies(&share.messages)?;
    let requests = bodies.len();
    client += client_started.elapsed();
    let post_started = Instant::now();
    send_to_device(http, base, &sender_login, bodies).await?;
    let posted = Instant::now();
    let post = posted - post_started;

    let deadline = tokio::time::Instant::from_std(posted + Duration::from_secs(60));
    let mut arrivals = Vec::with_capacity(recipients.len());
    while arrivals.len() < recipients.len() {
        match tokio::time::timeout_at(deadline, crowd.arrivals.recv()).await {
            Ok(Some(arrival)) => arrivals.push(arrival),
            _ => break,
        }
    }
    if let Some(error) = arrivals.iter().find_map(|a| a.error.as_deref()) {
        anyhow::bail!("a recipient could not decrypt its room key: {error}");
    }
    ensure!(
        arrivals.len() == recipients.len(),
        "only {} of {} devices had the room key after 60 s",
        arrivals.len(),
        recipients.len()
    );
    let last = arrivals.iter().map(|a| a.at).max().unwrap_or(posted);
    let mut after_post: Vec<Duration> = arrivals.iter().map(|a| a.at.saturating_duration_since(posted)).collect();
    after_post.sort();
    Ok(KeyRound {
        devices: recipients.len(),
        query,
        verify_listing,
        total: last - started,
        claim: claim_time,
        client,
        post,
        requests,
        delivery: last.saturating_duration_since(posted),
        decrypt_sum: arrivals.iter().map(|a| a.decrypt).sum(),
        arrivals: after_post,
        fallback_keys: claimed.keys.iter().filter(|k| k.fallback).count(),
    })
}

// ----- Messages through the encrypted path -----

#[derive(Deserialize)]
struct MessageFrame {
    chat_id: Uuid,
    sender_id: Uuid,
    sender_device_id: Option<Uuid>,
    client_msg_id: String,
    ciphertext: Option<String>,
    algorithm: String,
}

/// A message the recipient has read (decrypted, or decoded for the plain loop).
struct Processed {
    run: usize,
    at: Instant,
    error: Option<String>,
}

fn run_of(client_msg_id: &str) -> usize {
    client_msg_id.strip_prefix('r').and_then(|rest| rest.split('-').next()).and_then(|r| r.parse().ok()).unwrap_or(0)
}

/// The recipient's side of one message: decrypt (or decode) and check it. `Ok(false)`: its room
/// key has not arrived yet.
fn read_message(device: &mut OwnDevice, message: &MessageFrame) -> Result<bool> {
    let ciphertext = message.ciphertext.as_deref().unwrap_or_default();
    if message.algorithm == MEGOLM_ALGORITHM {
        let sender = DeviceAddress::new(message.sender_id, message.sender_device_id.unwrap_or_default());
        return match device.decrypt_message(message.chat_id, sender, &message.algorithm, ciphertext) {
            Ok(_) => Ok(true),
            Err(CoreError::MissingRoomKey { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        };
    }
    let plaintext: MegolmPlaintext =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(ciphertext)?)?;
    ensure!(plaintext.chat_id == message.chat_id, "the message was written for another chat");
    Ok(true)
}

/// The recipient device's socket: room keys by Olm, messages by Megolm (or plain). A message whose
/// room key has not arrived yet (the key travels on another path) waits for it.
fn recipient_loop(
    mut socket: Socket,
    mut device: OwnDevice,
    own_user: Uuid,
    processed: mpsc::UnboundedSender<Processed>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut waiting: Vec<MessageFrame> = Vec::new();
        while let Ok(Some(text)) = socket.next_text(Duration::from_secs(3600)).await {
            let Ok(Frame { kind, data: Some(data) }) = serde_json::from_str::<Frame>(&text) else { continue };
            let mut ready = Vec::new();
            match kind.as_str() {
                "to_device" => {
                    let result = serde_json::from_str::<IncomingToDevice>(data.get())
                        .map_err(anyhow::Error::from)
                        .and_then(|message| Ok(device.decrypt_to_device(&message)?));
                    if let Err(error) = result {
                        let _ =
                            processed.send(Processed { run: 0, at: Instant::now(), error: Some(error.to_string()) });
                    }
                    ready.append(&mut waiting);
                }
                "message.created" => match serde_json::from_str::<MessageFrame>(data.get()) {
                    Ok(message) if message.sender_id != own_user => ready.push(message),
                    _ => continue,
                },
                _ => continue,
            }
            for message in ready {
                match read_message(&mut device, &message) {
                    Ok(false) => waiting.push(message),
                    result => {
                        let run = run_of(&message.client_msg_id);
                        let error = result.err().map(|e| e.to_string());
                        if processed.send(Processed { run, at: Instant::now(), error }).is_err() {
                            return;
                        }
                    }
                }
            }
        }
    })
}

/// The sender's side of the one chat.
struct Conversation {
    http: reqwest::Client,
    base: String,
    chat: Uuid,
    sender_login: Login,
    sender: tokio::sync::Mutex<OwnDevice>,
    recipients: BTreeSet<DeviceAddress>,
    rotations: AtomicUsize,
}

impl Conversation {
    /// Before an encrypted message: a new Megolm session when the current one is used up (100
    /// messages), its key to the recipient by Olm (claiming a one-time key the first time).
    async fn ensure_room_key(&self, device: &mut OwnDevice) -> Result<()> {
        let (http, base) = (&self.http, self.base.as_str());
        let preparation = device.prepare_send(self.chat, &self.recipients, now_unix_secs())?;
        if preparation.needs_room_key.is_empty() {
            return Ok(());
        }
        let claimed = if preparation.needs_one_time_key.is_empty() {
            Vec::new()
        } else {
            let text = claim(http, base, &self.sender_login, &preparation.needs_one_time_key).await?;
            serde_json::from_str::<ClaimAnswer>(&text)?.keys
        };
        let share = device.share_room_key(self.chat, &claimed)?;
        ensure!(share.messages.len() == self.recipients.len(), "room key not shared with every device");
        send_to_device(http, base, &self.sender_login, to_device_bodies(&share.messages)?).await?;
        self.rotations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn send(&self, run: usize, n: usize, encrypted: bool) -> Result<()> {
        let content =
            MessageContent::Text { body: format!("message {n} of run {run} ................................") };
        let (algorithm, ciphertext) = if encrypted {
            let mut device = self.sender.lock().await;
            self.ensure_room_key(&mut device).await?;
            let message = device.encrypt_message(self.chat, &content, now_unix_secs())?;
            (message.algorithm, message.ciphertext)
        } else {
            let plaintext = serde_json::to_vec(&MegolmPlaintext { chat_id: self.chat, content })?;
            (PLAIN_ALGORITHM.to_owned(), base64::engine::general_purpose::STANDARD.encode(plaintext))
        };
        let body = json!({"client_msg_id": format!("r{run}-{n}"), "ciphertext": ciphertext, "algorithm": algorithm});
        let response = self
            .http
            .post(format!("{}/chats/{}/messages", self.base, self.chat))
            .bearer_auth(&self.sender_login.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        ensure!(status == 201, "send: {status} {}", response.text().await.unwrap_or_default());
        Ok(())
    }
}

struct MessageRun {
    encrypted: bool,
    total: usize,
    /// From the first POST to the recipient having read the last message.
    elapsed: Duration,
    /// CPU seconds by process over the run.
    cpu: Vec<(String, f64)>,
    rotations: usize,
}

async fn message_run(
    conversation: &Conversation,
    processed: &mut mpsc::UnboundedReceiver<Processed>,
    run: usize,
    encrypted: bool,
    concurrency: usize,
    total: usize,
) -> Result<MessageRun> {
    let rotations_before = conversation.rotations.load(Ordering::Relaxed);
    let cpu_before = cpu_ticks();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let workers = (0..concurrency).map(|_| async {
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if n >= total {
                return Ok::<_, anyhow::Error>(());
            }
            conversation.send(run, n, encrypted).await?;
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut read = 0;
    let mut last = started;
    while read < total {
        match tokio::time::timeout_at(deadline, processed.recv()).await {
            Ok(Some(message)) => {
                if let Some(error) = message.error {
                    anyhow::bail!("the recipient could not read a message: {error}");
                }
                if message.run == run {
                    read += 1;
                    last = message.at;
                }
            }
            _ => anyhow::bail!("the recipient read {read} of {total} messages of run {run} in 60 s"),
        }
    }
    let cpu = cpu_seconds(&cpu_before, &cpu_ticks());
    Ok(MessageRun {
        encrypted,
        total,
        elapsed: last - started,
        cpu,
        rotations: conversation.rotations.load(Ordering::Relaxed) - rotations_before,
    })
}

fn cpu_per_message(run: &MessageRun) -> String {
    run.cpu
        .iter()
        .map(|(name, seconds)| format!("{name} {:.0}", seconds * 1e6 / run.total as f64))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main]
async fn main() -> Result<()> {
    raise_fd_limit();
    let base = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let users = env_usize("BENCH_E2EE_USERS", 100);
    let per_user = env_usize("BENCH_E2EE_DEVICES_PER_USER", 10);
    let key_rounds = env_usize("BENCH_E2EE_KEY_ROUNDS", 3);
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let total = env_usize("BENCH_E2EE_MESSAGES", 5_000);
    let pairs = env_usize("BENCH_E2EE_PAIRS", 3);
    let http = reqwest::Client::builder().pool_max_idle_per_host(1024).build()?;
    println!(
        "parley-bench-e2ee against {base}: room keys for {users} users x {per_user} devices, {key_rounds} rounds; \
         {pairs} x ({total} plain + {total} encrypted) messages in one chat from {concurrency} concurrent senders"
    );

    // 1. Room keys for a 1,000-device group.
    let mut crowd = crowd(&http, &base, users, per_user).await?;
    let mut rounds = Vec::new();
    for round in 0..key_rounds {
        rounds.push(room_key_round(&http, &base, &mut crowd, round).await?);
    }
    // Idle sockets still cost the server something: measure it while they are open, then close them.
    let idle_before = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = cpu_seconds(&idle_before, &cpu_ticks());
    for listener in crowd.listeners.drain(..) {
        listener.abort();
    }
    drop(crowd);

    // 2. Messages through the full encrypted path, and the same loop unencrypted.
    let sender_login = user_with_devices(&http, &base, "Sender", 1).await?.remove(0);
    let recipient_login = user_with_devices(&http, &base, "Recipient", 1).await?.remove(0);
    let mut sender = publish_device(&http, &base, &sender_login).await?;
    let mut recipient = publish_device(&http, &base, &recipient_login).await?;
    let chat = create_group(&http, &base, &sender_login, &[recipient_login.user_id]).await?;
    let listing: UserDevices = call(
        http.get(format!("{base}/keys/users/{}", recipient_login.user_id)).bearer_auth(&sender_login.token),
        &[200],
        "recipient's devices",
    )
    .await?;
    sender.observe_user_devices(&listing);
    let listing: UserDevices = call(
        http.get(format!("{base}/keys/users/{}", sender_login.user_id)).bearer_auth(&recipient_login.token),
        &[200],
        "sender's devices",
    )
    .await?;
    recipient.observe_user_devices(&listing);
    let (processed_sender, mut processed) = mpsc::unbounded_channel();
    let socket = Socket::connect(&base, &recipient_login.token, None).await?;
    let recipient_task = recipient_loop(socket, recipient, recipient_login.user_id, processed_sender);
    let conversation = Conversation {
        http: http.clone(),
        base: base.clone(),
        chat,
        recipients: BTreeSet::from([recipient_login.address()]),
        sender_login,
        sender: tokio::sync::Mutex::new(sender),
        rotations: AtomicUsize::new(0),
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut runs = Vec::new();
    for pair in 0..pairs {
        for encrypted in [false, true] {
            let run = runs.len() + 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
            runs.push(
                message_run(&conversation, &mut processed, run, encrypted, concurrency, total)
                    .await
                    .with_context(|| format!("pair {pair}, encrypted: {encrypted}"))?,
            );
        }
    }
    recipient_task.abort();

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    for (i, round) in rounds.iter().enumerate() {
        let d = round.devices;
        println!(
            "| room key to {d} devices, round {}: **total {:.0} ms** | claim {d} one-time keys (server) {:.0} ms + \
             {d} Olm sessions and encryptions (client) {:.0} ms + POST /to-device x {} (server) {:.0} ms + delivery \
             until the last device decrypted {:.0} ms |",
            i + 1,
            ms(round.total),
            ms(round.claim),
            ms(round.client),
            round.requests,
            ms(round.post),
            ms(round.delivery),
        );
        println!(
            "| round {}: decrypted after the POST answer | first {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, last {:.1} ms; \
             client decrypt summed over the {d} devices {:.0} ms ({:.0} µs each); {} fallback keys |",
            i + 1,
            percentile(&round.arrivals, 0.0),
            percentile(&round.arrivals, 0.5),
            percentile(&round.arrivals, 0.99),
            percentile(&round.arrivals, 1.0),
            ms(round.decrypt_sum),
            round.decrypt_sum.as_secs_f64() * 1e6 / d as f64,
            round.fallback_keys,
        );
        println!(
            "| round {} setup (not timed): POST /keys/query for {users} users, {d} devices | {:.0} ms + verifying \
             the {d} listed devices (client) {:.0} ms |",
            i + 1,
            ms(round.query),
            ms(round.verify_listing),
        );
    }
    println!(
        "| CPU over 10 s with the {} sockets open and idle | {} |",
        users * per_user,
        idle.iter().map(|(name, s)| format!("{name} {:.0} %", s * 10.0)).collect::<Vec<_>>().join(", ")
    );
    let (mut plain_time, mut e2ee_time, mut plain_n, mut e2ee_n) = (Duration::ZERO, Duration::ZERO, 0, 0);
    for run in &runs {
        let rate = run.total as f64 / run.elapsed.as_secs_f64();
        let label = if run.encrypted { "encrypted (Megolm)" } else { "unencrypted (plain base64)" };
        let rotations =
            if run.encrypted { format!(", {} room keys sent by Olm", run.rotations) } else { String::new() };
        println!(
            "| {label}: POST → frame → read, one chat, {concurrency} senders | {} in {:.2} s = **{rate:.0} msg/s**{rotations}; \
             CPU µs/msg: {} |",
            run.total,
            run.elapsed.as_secs_f64(),
            cpu_per_message(run)
        );
        if run.encrypted {
            e2ee_time += run.elapsed;
            e2ee_n += run.total;
        } else {
            plain_time += run.elapsed;
            plain_n += run.total;
        }
    }
    let plain_rate = plain_n as f64 / plain_time.as_secs_f64();
    let e2ee_rate = e2ee_n as f64 / e2ee_time.as_secs_f64();
    println!(
        "| all runs: unencrypted {plain_rate:.0} msg/s, encrypted {e2ee_rate:.0} msg/s | encrypted path costs \
         **{:+.1} %** time per message |",
        (plain_rate / e2ee_rate - 1.0) * 100.0
    );
    Ok(())
}
