//! End-to-end encryption over the running stack with the real client core (vodozemac): what the
//! server stores, logs and keeps in object storage never contains a message's or a photo's
//! plaintext.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use base64::Engine;
use parley_client_core::{
    AttachmentDecryptor, AttachmentEncryptor, AttachmentVerifier, ClaimedOneTimeKey, DeviceAddress, IncomingToDevice,
    MessageContent, OwnDevice, UserDevices,
};
use parley_tests::Stack;
use serde_json::{json, Value};
use uuid::Uuid;

/// One signed-in device driven by the client core.
struct CoreClient {
    token: String,
    device: OwnDevice,
}

fn uuid(value: &Value) -> Result<Uuid> {
    Ok(value.as_str().context("a uuid string")?.parse()?)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl CoreClient {
    async fn register(stack: &Stack, name: &str) -> Result<Self> {
        let registered = stack.register(name, &parley_tests::unique_email(name)).await?;
        let mut device = OwnDevice::new(uuid(&registered["user"]["id"])?, uuid(&registered["device_id"])?);
        let token = registered["access_token"].as_str().context("token")?.to_owned();
        let upload = serde_json::to_value(device.keys_upload(Some(name))?)?;
        let path = format!("/keys/devices/{}", device.address().device_id);
        let (status, body) = stack.put(&path, &token, &upload).await?;
        ensure!(status == 200, "publish keys: {status} {body}");
        device.mark_published();
        Ok(Self { token, device })
    }

    fn user_id(&self) -> Uuid {
        self.device.address().user_id
    }

    /// Fetches and checks the devices of `members`; returns them all.
    async fn observe(&mut self, stack: &Stack, members: &[Uuid]) -> Result<BTreeSet<DeviceAddress>> {
        let (status, listed) = stack.post("/keys/query", Some(&self.token), &json!({"user_ids": members})).await?;
        ensure!(status == 200, "query keys: {status} {listed}");
        let mut recipients = BTreeSet::new();
        for user in listed["users"].as_array().context("users")? {
            let devices: UserDevices = serde_json::from_value(user.clone())?;
            let report = self.device.observe_user_devices(&devices);
            ensure!(
                report.rejected_devices.is_empty() && report.key_changes.is_empty(),
                "device list refused: {report:?}"
            );
            recipients.extend(
                devices.devices.iter().map(|d| DeviceAddress { user_id: devices.user_id, device_id: d.device_id }),
            );
        }
        Ok(recipients)
    }

    /// Shares this device's room key for `chat` with every device of `members`, then sends `content`.
    async fn send(&mut self, stack: &Stack, chat: Uuid, members: &[Uuid], content: &MessageContent) -> Result<Value> {
        let mut recipients = self.observe(stack, members).await?;
        recipients.remove(&self.device.address());
        let preparation = self.device.prepare_send(chat, &recipients, now_secs())?;
        let mut claimed: Vec<ClaimedOneTimeKey> = Vec::new();
        if !preparation.needs_one_time_key.is_empty() {
            let wanted: Vec<Value> = preparation
                .needs_one_time_key
                .iter()
                .map(|d| json!({"user_id": d.user_id, "device_id": d.device_id}))
                .collect();
            let (status, body) = stack.post("/keys/claim", Some(&self.token), &json!({"devices": wanted})).await?;
            ensure!(status == 200, "claim: {status} {body}");
            claimed = serde_json::from_value(body["keys"].clone())?;
        }
        let share = self.device.share_room_key(chat, &claimed)?;
        if !share.messages.is_empty() {
            let (status, body) =
                stack.post("/to-device", Some(&self.token), &json!({"messages": share.messages})).await?;
            ensure!(status == 200, "to-device: {status} {body}");
        }
        let encrypted = self.device.encrypt_message(chat, content, now_secs())?;
        // The server grants the chat's members access to the attached (encrypted) object by id.
        let media_ids: Vec<Uuid> = match content {
            MessageContent::File { file, .. } => vec![file.media_id],
            MessageContent::Text { .. } => Vec::new(),
        };
        let (status, sent) = stack
            .post(
                &format!("/chats/{chat}/messages"),
                Some(&self.token),
                &json!({"client_msg_id": Uuid::new_v4(), "ciphertext": encrypted.ciphertext, "algorithm": encrypted.algorithm, "media_ids": media_ids}),
            )
            .await?;
        ensure!(status == 201, "send: {status} {sent}");
        Ok(sent)
    }

    /// Takes in every waiting room key, then decrypts `chat`'s history.
    async fn read(&mut self, stack: &Stack, chat: Uuid, members: &[Uuid]) -> Result<Vec<MessageContent>> {
        self.observe(stack, members).await?;
        let (status, queue) = stack.get("/to-device", Some(&self.token)).await?;
        ensure!(status == 200, "drain: {status} {queue}");
        let mut ids = Vec::new();
        for item in queue["items"].as_array().context("items")? {
            let incoming: IncomingToDevice = serde_json::from_value(item.clone())?;
            self.device.decrypt_to_device(&incoming)?;
            ids.push(incoming.id);
        }
        if !ids.is_empty() {
            ensure!(stack.post("/to-device/ack", Some(&self.token), &json!({"ids": ids})).await?.0 == 204, "ack");
        }
        let (status, history) = stack.get(&format!("/chats/{chat}/messages"), Some(&self.token)).await?;
        ensure!(status == 200, "history: {status} {history}");
        let mut contents = Vec::new();
        let mut messages = history["items"].as_array().context("items")?.clone();
        messages.sort_by_key(|m| m["seq"].as_i64());
        for message in &messages {
            let sender =
                DeviceAddress { user_id: uuid(&message["sender_id"])?, device_id: uuid(&message["sender_device_id"])? };
            let decrypted = self.device.decrypt_message(
                chat,
                sender,
                message["algorithm"].as_str().context("algorithm")?,
                message["ciphertext"].as_str().context("ciphertext")?,
            )?;
            contents.push(decrypted.content);
        }
        Ok(contents)
    }
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path.display().to_string());
            }
        }
    }
    Ok(found)
}

#[tokio::test]
async fn no_plaintext_reaches_the_database_the_object_store_or_a_log() -> Result<()> {
    let stack = Stack::start().await?;
    let mut ada = CoreClient::register(&stack, "ada").await?;
    let mut bob = CoreClient::register(&stack, "bob").await?;
    let (status, chat) =
        stack.post("/chats", Some(&ada.token), &json!({"type": "direct", "member_ids": [bob.user_id()]})).await?;
    ensure!(status == 201, "{chat}");
    let chat = uuid(&chat["id"])?;
    let members = [ada.user_id(), bob.user_id()];

    let canary = format!("canary-{}", Uuid::new_v4().simple());
    let sent =
        ada.send(&stack, chat, &members, &MessageContent::Text { body: format!("the word is {canary}") }).await?;
    let message_ciphertext = sent["ciphertext"].as_str().context("ciphertext")?.to_owned();

    // A "photo" whose bytes carry the canary, encrypted on the way up.
    let photo: Vec<u8> = [&b"\x89PNG\r\n\x1a\n"[..], canary.as_bytes(), &[7u8; 100_000]].concat();
    let mut encryptor = AttachmentEncryptor::new()?;
    let mut ciphertext = photo.clone();
    for chunk in ciphertext.chunks_mut(8192) {
        encryptor.update(chunk)?;
    }
    let keys = encryptor.finish();
    let upload = stack
        .http
        .post(stack.url("/media"))
        .bearer_auth(&ada.token)
        .header("content-type", "application/octet-stream")
        .body(ciphertext.clone())
        .send()
        .await?;
    let (status, media) = parley_tests::read(upload).await?;
    ensure!(status == 201, "upload: {status} {media}");
    let info = keys.into_info(uuid(&media["id"])?, "image/png", "photo.png");
    ada.send(&stack, chat, &members, &MessageContent::File { file: info, body: String::new(), thumbnail: None })
        .await?;

    // Bob decrypts both.
    let contents = bob.read(&stack, chat, &members).await?;
    assert_eq!(contents.len(), 2, "{contents:?}");
    assert_eq!(contents[0], MessageContent::Text { body: format!("the word is {canary}") });
    let MessageContent::File { file, .. } = &contents[1] else {
        anyhow::bail!("second message is not a file: {contents:?}")
    };
    let downloaded =
        stack.http.get(stack.url(&format!("/media/{}", file.media_id))).bearer_auth(&bob.token).send().await?;
    ensure!(downloaded.status() == 200, "download: {}", downloaded.status());
    let mut bytes = downloaded.bytes().await?.to_vec();
    let mut verifier = AttachmentVerifier::new(file)?;
    verifier.update(&bytes);
    verifier.finish()?;
    let mut decryptor = AttachmentDecryptor::new(file)?;
    decryptor.update(&mut bytes)?;
    decryptor.finish()?;
    assert_eq!(bytes, photo);

    // Nowhere on the server side: the whole database, local object storage and every log.
    let dump = tokio::process::Command::new("pg_dump").arg(&stack.database_url).output().await.context("pg_dump")?;
    ensure!(dump.status.success(), "pg_dump: {}", String::from_utf8_lossy(&dump.stderr));
    ensure!(dump.stdout.len() > 10_000, "the dump is suspiciously small");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&canary);
    for needle in [canary.as_bytes(), encoded.as_bytes()] {
        ensure!(!dump.stdout.windows(needle.len()).any(|w| w == needle), "plaintext in pg_dump");
        let stack_dir = stack.data_dir().parent().context("stack dir")?.to_path_buf();
        let leaked = files_containing(&stack_dir, needle)?;
        ensure!(leaked.is_empty(), "plaintext in {leaked:?}");
    }
    // The scans can find things: the message's ciphertext is in the dump, the photo's on disk.
    ensure!(
        dump.stdout.windows(message_ciphertext.len()).any(|w| w == message_ciphertext.as_bytes()),
        "no ciphertext in the dump"
    );
    ensure!(
        !files_containing(&stack.data_dir(), &ciphertext[..64])?.is_empty(),
        "the encrypted photo is not in local storage"
    );
    Ok(())
}
