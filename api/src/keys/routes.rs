//! `/keys` and `/to-device`: commands on the `Device` and `ToDeviceBatch` aggregates; queries on
//! the `keys` read model. A device is the caller's login session (`device_id` = the session id).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::join_all;
use parley_domain::device::{DeviceCommand, IdentityKeys, OneTimeKey};
use parley_domain::to_device::{ToDeviceCommand, ToDeviceMessage, MAX_BATCH};
use parley_domain::EventMetadata;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::queries::{self, DeviceRow};
use super::{device_error, to_device_error};
use crate::auth::{AccessToken, Caller};
use crate::error::{command_error, ApiError};
use crate::state::AppState;
use crate::ApiTags;

/// Users or devices one query, claim or batch may name.
const MAX_TARGETS: usize = 1000;
/// How long a lookup that finds someone invisible waits for the chats read model (a chat created
/// a moment ago opens the directory at once).
const VISIBILITY_WAIT: Duration = Duration::from_millis(1000);
const DEFAULT_DRAIN: u32 = 100;

/// A device's long-term public keys, self-signed (see `docs/e2ee.md`).
#[derive(Debug, Clone, Object)]
pub struct IdentityKeysBody {
    /// Unpadded base64 of the 32-byte Curve25519 key (Olm).
    pub curve25519: String,
    /// Unpadded base64 of the 32-byte Ed25519 key (signatures).
    pub ed25519: String,
    /// Unpadded base64 Ed25519 signature over the canonical JSON of the device's keys.
    pub signature: String,
}

/// A signed one-time (or fallback) Curve25519 key.
#[derive(Debug, Clone, Object)]
pub struct OneTimeKeyBody {
    pub key_id: String,
    pub curve25519: String,
    pub signature: String,
}

#[derive(Debug, Object)]
pub struct PublishKeysRequest {
    /// A name the user recognises ("laptop"); at most 64 characters.
    pub display_name: Option<String>,
    pub identity_keys: IdentityKeysBody,
    /// New one-time keys (at most 100 held at once).
    pub one_time_keys: Option<Vec<OneTimeKeyBody>>,
    /// Replaces the fallback key, handed out when no one-time key is left.
    pub fallback_key: Option<OneTimeKeyBody>,
}

#[derive(Debug, Object)]
pub struct PublishKeysResponse {
    pub device_id: Uuid,
    /// Unclaimed one-time keys the device now holds.
    pub one_time_key_count: u32,
    pub has_fallback_key: bool,
}

/// One of your own devices.
#[derive(Debug, Object)]
pub struct OwnDevice {
    pub device_id: Uuid,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    /// Last key upload or token refresh (at most a token lifetime old while in use).
    pub last_seen_at: DateTime<Utc>,
    /// Whether this is the device making the request.
    pub current: bool,
    pub one_time_key_count: u32,
    pub has_fallback_key: bool,
    pub identity_keys: IdentityKeysBody,
}

#[derive(Debug, Object)]
pub struct OwnDeviceList {
    pub items: Vec<OwnDevice>,
}

/// Another user's device as the directory shows it.
#[derive(Debug, Object)]
pub struct DeviceKeys {
    pub device_id: Uuid,
    pub display_name: String,
    pub identity_keys: IdentityKeysBody,
}

#[derive(Debug, Object)]
pub struct UserDevices {
    pub user_id: Uuid,
    pub devices: Vec<DeviceKeys>,
}

#[derive(Debug, Object)]
pub struct QueryKeysRequest {
    /// At most 1,000 users, each yourself or someone sharing a chat with you.
    pub user_ids: Vec<Uuid>,
}

#[derive(Debug, Object)]
pub struct QueryKeysResponse {
    pub users: Vec<UserDevices>,
}

#[derive(Debug, Clone, Copy, Object)]
pub struct DeviceRef {
    pub user_id: Uuid,
    pub device_id: Uuid,
}

#[derive(Debug, Object)]
pub struct ClaimKeysRequest {
    /// At most 1,000 devices.
    pub devices: Vec<DeviceRef>,
}

/// A key handed out by a claim: verify its signature with the device's Ed25519 key before use.
#[derive(Debug, Object)]
pub struct ClaimedKey {
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub key_id: String,
    pub curve25519: String,
    pub signature: String,
    /// The device had no one-time key left: this is its (reusable) fallback key.
    pub fallback: bool,
    /// One-time keys the device has left.
    pub remaining: u32,
}

#[derive(Debug, Object)]
pub struct ClaimKeysResponse {
    /// One per claimed device that had a key (a device with neither a one-time nor a fallback
    /// key is left out).
    pub keys: Vec<ClaimedKey>,
}

#[derive(Debug, Object)]
pub struct OutgoingToDevice {
    pub user_id: Uuid,
    pub device_id: Uuid,
    /// Opaque to the server (at most 16 KiB).
    pub ciphertext: String,
}

#[derive(Debug, Object)]
pub struct SendToDeviceRequest {
    /// 1 to 1,000 messages.
    pub messages: Vec<OutgoingToDevice>,
}

#[derive(Debug, Object)]
pub struct SendToDeviceResponse {
    /// The messages' ids, in the order sent.
    pub ids: Vec<Uuid>,
}

/// A to-device message waiting for this device. The sender is the server's word: the user and
/// device of the session that sent it.
#[derive(Debug, Object)]
pub struct ToDeviceMessageView {
    pub id: Uuid,
    pub sender_id: Uuid,
    pub sender_device_id: Uuid,
    pub ciphertext: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Object)]
pub struct ToDevicePage {
    pub items: Vec<ToDeviceMessageView>,
    /// Pass as `cursor` for the next page; `null` on the last page. Messages stay queued until
    /// acknowledged.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Object)]
pub struct AcknowledgeRequest {
    /// Ids of messages this device has processed (at most 1,000).
    pub ids: Vec<Uuid>,
}

#[derive(ApiResponse)]
pub enum PublishKeysResponses {
    #[oai(status = 200)]
    Ok(Json<PublishKeysResponse>),
}

#[derive(ApiResponse)]
pub enum OwnDevicesResponse {
    #[oai(status = 200)]
    Ok(Json<OwnDeviceList>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
pub enum UserDevicesResponse {
    #[oai(status = 200)]
    Ok(Json<UserDevices>),
}

#[derive(ApiResponse)]
pub enum QueryKeysResponses {
    #[oai(status = 200)]
    Ok(Json<QueryKeysResponse>),
}

#[derive(ApiResponse)]
pub enum ClaimKeysResponses {
    #[oai(status = 200)]
    Ok(Json<ClaimKeysResponse>),
}

#[derive(ApiResponse)]
pub enum SendToDeviceResponses {
    #[oai(status = 200)]
    Ok(Json<SendToDeviceResponse>),
}

#[derive(ApiResponse)]
pub enum ToDevicePageResponse {
    #[oai(status = 200)]
    Ok(Json<ToDevicePage>),
}

fn identity_body(row: &DeviceRow) -> IdentityKeysBody {
    IdentityKeysBody {
        curve25519: row.curve25519.clone(),
        ed25519: row.ed25519.clone(),
        signature: row.signature.clone(),
    }
}

fn one_time_key(body: OneTimeKeyBody) -> OneTimeKey {
    OneTimeKey { key_id: body.key_id, curve25519: body.curve25519, signature: body.signature }
}

fn count(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn distinct<T: Copy + Eq + std::hash::Hash>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|item| seen.insert(*item)).collect()
}

fn check_targets(len: usize, what: &str) -> Result<(), ApiError> {
    if len == 0 || len > MAX_TARGETS {
        return Err(ApiError::invalid("invalid_batch_size", format!("name 1 to {MAX_TARGETS} {what}")));
    }
    Ok(())
}

/// Refuses (404) unless `viewer` may see every one of `users`' devices.
async fn ensure_visible(state: &AppState, viewer: Uuid, users: &[Uuid]) -> Result<(), ApiError> {
    let all_visible = || async {
        let visible = queries::visible_users(&state.pool, viewer, users).await?;
        Ok::<bool, sqlx::Error>(users.iter().all(|user| visible.contains(user)))
    };
    if all_visible().await? || state.progress.wait_until(VISIBILITY_WAIT, all_visible).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The live devices `refs` name, each checked to belong to the user it is named with and to be
/// visible to `viewer`; any other → 404.
async fn visible_devices(
    state: &AppState,
    viewer: Uuid,
    refs: &[DeviceRef],
) -> Result<HashMap<Uuid, DeviceRow>, ApiError> {
    let users = distinct(refs.iter().map(|r| r.user_id));
    ensure_visible(state, viewer, &users).await?;
    let ids = distinct(refs.iter().map(|r| r.device_id));
    let rows: HashMap<Uuid, DeviceRow> =
        queries::live_devices(&state.pool, &ids).await?.into_iter().map(|row| (row.device_id, row)).collect();
    if refs.iter().all(|r| rows.get(&r.device_id).is_some_and(|row| row.user_id == r.user_id)) {
        Ok(rows)
    } else {
        Err(ApiError::NotFound)
    }
}

fn user_devices(user_id: Uuid, rows: &[&DeviceRow]) -> UserDevices {
    UserDevices {
        user_id,
        devices: rows
            .iter()
            .map(|row| DeviceKeys {
                device_id: row.device_id,
                display_name: row.display_name.clone(),
                identity_keys: identity_body(row),
            })
            .collect(),
    }
}

async fn devices_by_user(state: &AppState, users: &[Uuid]) -> Result<Vec<UserDevices>, ApiError> {
    let rows = queries::devices_of(&state.pool, users).await?;
    let mut by_user: BTreeMap<Uuid, Vec<&DeviceRow>> = BTreeMap::new();
    for row in &rows {
        by_user.entry(row.user_id).or_default().push(row);
    }
    Ok(users.iter().map(|user| user_devices(*user, by_user.get(user).map(Vec::as_slice).unwrap_or_default())).collect())
}

async fn claim_one(state: &AppState, caller: Caller, device: DeviceRef) -> Result<Option<ClaimedKey>, ApiError> {
    let now = Utc::now();
    let command = DeviceCommand::Claim { claimer_id: caller.user_id, claimer_device_id: caller.session_id, at: now };
    let metadata = EventMetadata::new(Some(caller.user_id), now, crate::ops::request_id::current());
    let committed = state
        .devices
        .execute_retrying(&device.device_id.to_string(), command, &metadata)
        .await
        .map_err(|e| command_error(e, device_error))?;
    let claimed = committed.state.claimed_key(committed.events.iter().map(|e| &e.payload));
    Ok(claimed.map(|claimed| ClaimedKey {
        user_id: device.user_id,
        device_id: device.device_id,
        key_id: claimed.key.key_id,
        curve25519: claimed.key.curve25519,
        signature: claimed.key.signature,
        fallback: claimed.fallback,
        remaining: count(claimed.remaining),
    }))
}

pub struct KeysApi;

#[OpenApi(prefix_path = "/keys", tag = "ApiTags::Keys")]
impl KeysApi {
    /// Publish or replenish this device's keys
    ///
    /// `device_id` must be the id of the session making the request (returned at login as
    /// `device_id`). The first call registers the device with its self-signed identity keys;
    /// later calls add one-time keys, replace the fallback key or rename the device. Identity keys
    /// never change (409): a new key needs a new device. Every signature is checked (400).
    #[oai(path = "/devices/:device_id", method = "put", operation_id = "publish_device_keys")]
    async fn publish(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        device_id: Path<Uuid>,
        body: Json<PublishKeysRequest>,
    ) -> Result<PublishKeysResponses, ApiError> {
        let caller = auth.0;
        if device_id.0 != caller.session_id {
            return Err(ApiError::Forbidden("a session publishes keys only for its own device (its device_id)".into()));
        }
        let PublishKeysRequest { display_name, identity_keys, one_time_keys, fallback_key } = body.0;
        let now = Utc::now();
        let command = DeviceCommand::Publish {
            device_id: caller.session_id,
            user_id: caller.user_id,
            display_name,
            identity_keys: IdentityKeys {
                curve25519: identity_keys.curve25519,
                ed25519: identity_keys.ed25519,
                signature: identity_keys.signature,
            },
            one_time_keys: one_time_keys.unwrap_or_default().into_iter().map(one_time_key).collect(),
            fallback_key: fallback_key.map(one_time_key),
            at: now,
        };
        let metadata = EventMetadata::new(Some(caller.user_id), now, crate::ops::request_id::current());
        let committed = state
            .devices
            .execute_retrying(&caller.session_id.to_string(), command, &metadata)
            .await
            .map_err(|e| command_error(e, device_error))?;
        state.await_projection("keys", "Device", caller.session_id, committed.version).await;
        Ok(PublishKeysResponses::Ok(Json(PublishKeysResponse {
            device_id: caller.session_id,
            one_time_key_count: count(committed.state.one_time_keys.len()),
            has_fallback_key: committed.state.fallback_key.is_some(),
        })))
    }

    /// Your devices
    #[oai(path = "/devices", method = "get", operation_id = "list_own_devices")]
    async fn own_devices(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
    ) -> Result<OwnDevicesResponse, ApiError> {
        let caller = auth.0;
        let rows = queries::devices_of(&state.pool, &[caller.user_id]).await?;
        Ok(OwnDevicesResponse::Ok(Json(OwnDeviceList {
            items: rows
                .into_iter()
                .map(|row| OwnDevice {
                    identity_keys: identity_body(&row),
                    current: row.device_id == caller.session_id,
                    device_id: row.device_id,
                    display_name: row.display_name,
                    created_at: row.created_at,
                    last_seen_at: row.last_seen_at,
                    one_time_key_count: u32::try_from(row.one_time_key_count).unwrap_or(0),
                    has_fallback_key: row.has_fallback_key,
                })
                .collect(),
        })))
    }

    /// Remove one of your devices
    ///
    /// Signs that device out (its session is revoked: its tokens and sockets stop working) and
    /// removes its keys; contacts are told their device lists changed.
    #[oai(path = "/devices/:device_id", method = "delete", operation_id = "remove_device")]
    async fn remove(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        device_id: Path<Uuid>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        let owned = queries::live_devices(&state.pool, &[device_id.0]).await?;
        if !owned.iter().any(|row| row.user_id == caller.user_id) {
            return Err(ApiError::NotFound);
        }
        crate::auth::routes::revoke(&state, caller, device_id.0).await?;
        Ok(NoContent::Done)
    }

    /// A user's devices and identity keys
    ///
    /// Visible to the user and to users sharing a chat with them; anyone else gets 404.
    #[oai(path = "/users/:user_id", method = "get", operation_id = "get_user_devices")]
    async fn user_devices(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        user_id: Path<Uuid>,
    ) -> Result<UserDevicesResponse, ApiError> {
        ensure_visible(&state, auth.0.user_id, &[user_id.0]).await?;
        let mut users = devices_by_user(&state, &[user_id.0]).await?;
        users.pop().map(|user| UserDevicesResponse::Ok(Json(user))).ok_or(ApiError::NotFound)
    }

    /// Several users' devices and identity keys
    ///
    /// Each user must be visible to you (yourself, or sharing a chat), else 404 for the request.
    #[oai(path = "/query", method = "post", operation_id = "query_keys")]
    async fn query(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<QueryKeysRequest>,
    ) -> Result<QueryKeysResponses, ApiError> {
        check_targets(body.0.user_ids.len(), "users")?;
        let users = distinct(body.0.user_ids.iter().copied());
        ensure_visible(&state, auth.0.user_id, &users).await?;
        Ok(QueryKeysResponses::Ok(Json(QueryKeysResponse { users: devices_by_user(&state, &users).await? })))
    }

    /// Claim one-time keys
    ///
    /// One key per named device, each handed out exactly once; a device with none left gives its
    /// fallback key (`fallback: true`). Unknown devices, or devices of users not visible to you,
    /// make the whole request 404. A device whose stock runs low is told over its socket.
    #[oai(path = "/claim", method = "post", operation_id = "claim_keys")]
    async fn claim(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<ClaimKeysRequest>,
    ) -> Result<ClaimKeysResponses, ApiError> {
        let caller = auth.0;
        check_targets(body.0.devices.len(), "devices")?;
        let mut seen = HashSet::new();
        let refs: Vec<DeviceRef> = body.0.devices.into_iter().filter(|r| seen.insert(r.device_id)).collect();
        visible_devices(&state, caller.user_id, &refs).await?;
        let claims = join_all(refs.iter().map(|device| claim_one(&state, caller, *device))).await;
        let mut keys = Vec::with_capacity(claims.len());
        for claim in claims {
            keys.extend(claim?);
        }
        Ok(ClaimKeysResponses::Ok(Json(ClaimKeysResponse { keys })))
    }
}

pub struct ToDeviceApi;

#[OpenApi(prefix_path = "/to-device", tag = "ApiTags::Keys")]
impl ToDeviceApi {
    /// Send to-device messages
    ///
    /// Queues each message for its device (yours, or of a user sharing a chat with you); the
    /// device gets it as a `to_device` frame and from `GET /to-device` until it acknowledges it.
    /// The sender recorded is your session's user and device. Unknown or invisible devices → 404;
    /// a device whose queue is full → 409 naming it.
    #[oai(path = "/", method = "post", operation_id = "send_to_device")]
    async fn send(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<SendToDeviceRequest>,
    ) -> Result<SendToDeviceResponses, ApiError> {
        let caller = auth.0;
        let messages = body.0.messages;
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(ApiError::invalid("invalid_batch_size", format!("send 1 to {MAX_BATCH} messages")));
        }
        let refs: Vec<DeviceRef> =
            messages.iter().map(|m| DeviceRef { user_id: m.user_id, device_id: m.device_id }).collect();
        visible_devices(&state, caller.user_id, &refs).await?;
        let mut incoming: BTreeMap<Uuid, i64> = BTreeMap::new();
        for message in &messages {
            *incoming.entry(message.device_id).or_default() += 1;
        }
        let (devices, counts): (Vec<Uuid>, Vec<i64>) = incoming.into_iter().unzip();
        let ttl_secs = state.config.to_device_ttl.as_secs_f64();
        let full =
            queries::full_queues(&state.pool, &devices, &counts, state.config.to_device_queue_max, ttl_secs).await?;
        if let Some(device) = full.first() {
            return Err(ApiError::Conflict {
                code: "to_device_queue_full",
                message: format!(
                    "device {device} has {} or more undelivered messages; leave it out or retry later",
                    state.config.to_device_queue_max
                ),
            });
        }
        let messages: Vec<ToDeviceMessage> = messages
            .into_iter()
            .map(|m| ToDeviceMessage {
                id: Uuid::now_v7(),
                user_id: m.user_id,
                device_id: m.device_id,
                ciphertext: m.ciphertext,
            })
            .collect();
        let ids = messages.iter().map(|m| m.id).collect();
        let now = Utc::now();
        let metadata = EventMetadata::new(Some(caller.user_id), now, crate::ops::request_id::current());
        // One command, one commit: the batch's events (each small enough for a NATS message) keep
        // the request's order in every device's queue.
        let command =
            ToDeviceCommand::Send { sender_id: caller.user_id, sender_device_id: caller.session_id, messages, at: now };
        state
            .to_device
            .execute(&Uuid::now_v7().to_string(), command, &metadata)
            .await
            .map_err(|e| command_error(e, to_device_error))?;
        Ok(SendToDeviceResponses::Ok(Json(SendToDeviceResponse { ids })))
    }

    /// This device's waiting to-device messages
    ///
    /// Oldest first; they stay until acknowledged (`POST /to-device/ack`) or expired.
    #[oai(path = "/", method = "get", operation_id = "list_to_device")]
    async fn list(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        /// 1 to 1,000 (default 100).
        limit: Query<Option<u32>>,
        cursor: Query<Option<String>>,
    ) -> Result<ToDevicePageResponse, ApiError> {
        let limit = limit.0.unwrap_or(DEFAULT_DRAIN);
        if limit == 0 || limit as usize > MAX_TARGETS {
            return Err(ApiError::invalid("invalid_limit", format!("limit must be 1 to {MAX_TARGETS}")));
        }
        let after = match cursor.0.as_deref() {
            Some(text) => {
                text.parse::<i64>().map_err(|_| ApiError::invalid("invalid_cursor", "cursor is not valid"))?
            }
            None => 0,
        };
        let ttl_secs = state.config.to_device_ttl.as_secs_f64();
        let rows = queries::queued(&state.pool, auth.0.session_id, after, i64::from(limit) + 1, ttl_secs).await?;
        let more = rows.len() > limit as usize;
        let rows: Vec<_> = rows.into_iter().take(limit as usize).collect();
        let next_cursor = if more { rows.last().map(|row| row.position.to_string()) } else { None };
        Ok(ToDevicePageResponse::Ok(Json(ToDevicePage {
            items: rows
                .into_iter()
                .map(|row| ToDeviceMessageView {
                    id: row.id,
                    sender_id: row.sender_id,
                    sender_device_id: row.sender_device_id,
                    ciphertext: row.ciphertext,
                    created_at: row.created_at,
                })
                .collect(),
            next_cursor,
        })))
    }

    /// Acknowledge to-device messages
    ///
    /// Deletes them from this device's queue (ids of other devices' messages change nothing).
    #[oai(path = "/ack", method = "post", operation_id = "acknowledge_to_device")]
    async fn acknowledge(
        &self,
        state: Data<&Arc<AppState>>,
        auth: AccessToken,
        body: Json<AcknowledgeRequest>,
    ) -> Result<NoContent, ApiError> {
        let caller = auth.0;
        let ids = distinct(body.0.ids);
        let now = Utc::now();
        let command = DeviceCommand::AcknowledgeToDevice { message_ids: ids, at: now };
        let metadata = EventMetadata::new(Some(caller.user_id), now, crate::ops::request_id::current());
        let committed = state
            .devices
            .execute_retrying(&caller.session_id.to_string(), command, &metadata)
            .await
            .map_err(|e| command_error(e, device_error))?;
        if !committed.events.is_empty() {
            state.await_projection("keys", "Device", caller.session_id, committed.version).await;
        }
        Ok(NoContent::Done)
    }
}
