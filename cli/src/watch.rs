//! `parley watch`: the realtime socket, decrypted. The profile is locked only while one frame is handled
//! (state re-loaded, changed, saved), so other `parley` commands on the same profile run in between.

use std::collections::HashSet;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use parley_client_core::IncomingToDevice;
use parley_sdk::frames::{ClientFrame, ServerEvent, ServerFrame};
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use uuid::Uuid;

use crate::api::Message;
use crate::args::WatchArgs;
use crate::e2ee::{self, decrypt, lacks_key, message_json, message_line, warn};
use crate::error::{CliError, Result};
use crate::output::Output;
use crate::session::{short, Context};

/// How often the socket is pinged and the access token checked.
const TICK: Duration = Duration::from_secs(20);

fn convert<T: serde::de::DeserializeOwned>(value: impl serde::Serialize) -> Result<T> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|error| CliError::Realtime(format!("unexpected frame: {error}")))
}

pub(crate) async fn watch(ctx: &mut Context, out: &Output, args: &WatchArgs) -> Result<()> {
    // To-device messages already taken over HTTP, whose frames are then skipped.
    let mut handled = HashSet::new();
    let (url, mut token) = {
        let mut signed = ctx.signed_in().await?;
        let drained = e2ee::drain_to_device(ctx, &mut signed).await?;
        handled.extend(drained.ids);
        e2ee::learn_names(&mut signed, drained.keys.iter().map(|key| key.sender_id)).await;
        for key in drained.keys {
            out.event(&json!({"event": "room_key", "key": key}), || {
                format!("· keys from {} for chat {}", signed.name_of(key.sender_id), key.chat_id)
            });
        }
        ctx.save(&signed)?;
        (signed.api.websocket_url(&signed.session.access_token), signed.session.access_token.clone())
    };
    let (mut socket, _) =
        tokio_tungstenite::connect_async(url).await.map_err(|error| CliError::Realtime(error.to_string()))?;
    out.info("watching (Ctrl-C to stop)");

    let deadline = args.timeout.map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let mut shown = 0u64;
    let mut tick = tokio::time::interval(TICK);
    tick.tick().await;
    loop {
        if args.count.is_some_and(|count| shown >= count) {
            break;
        }
        let frame = tokio::select! {
            frame = socket.next() => frame,
            () = sleep_until(deadline) => break,
            _ = tick.tick() => {
                // Keeps the access token fresh (the socket is told the new one) and the connection alive.
                let signed = ctx.signed_in().await?;
                let current = signed.session.access_token.clone();
                ctx.finish(signed)?;
                if current != token {
                    token = current;
                    let frame = ClientFrame::Auth { token: token.clone() }.to_json();
                    socket.send(WsMessage::Text(frame.into())).await.map_err(|e| CliError::Realtime(e.to_string()))?;
                }
                socket
                    .send(WsMessage::Text(ClientFrame::Ping.to_json().into()))
                    .await
                    .map_err(|error| CliError::Realtime(error.to_string()))?;
                continue;
            }
        };
        let text = match frame {
            None => return Err(CliError::Realtime("the server closed the connection".into())),
            Some(Err(error)) => return Err(CliError::Realtime(error.to_string())),
            Some(Ok(WsMessage::Text(text))) => text.as_str().to_owned(),
            Some(Ok(WsMessage::Close(frame))) => {
                let reason = frame.map(|frame| frame.reason.to_string()).unwrap_or_default();
                return Err(CliError::Realtime(format!("the server closed the connection: {reason}")));
            }
            Some(Ok(_)) => continue,
        };
        let frame = match ServerFrame::from_json(&text) {
            Ok(frame) => frame,
            Err(error) => {
                warn(&format!("unreadable frame ({error}): {text}"));
                continue;
            }
        };
        if handle(ctx, out, frame.event, &mut handled).await? {
            shown += 1;
        }
    }
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Handles one frame under the profile lock; true when it showed a chat message.
async fn handle(ctx: &mut Context, out: &Output, event: ServerEvent, handled: &mut HashSet<Uuid>) -> Result<bool> {
    if let ServerEvent::ToDevice(message) = &event {
        if handled.contains(&message.id) {
            return Ok(false);
        }
    }
    let mut signed = ctx.signed_in().await?;
    let mut shown_message = false;
    match event {
        ServerEvent::MessageCreated(message) => {
            let message: Message = convert(message)?;
            e2ee::learn_names(&mut signed, [message.sender_id]).await;
            let mut shown = decrypt(&mut signed.device, &message);
            if lacks_key(&shown) {
                // The key may still be queued (the to_device frame not handled yet): take it and retry.
                handled.extend(e2ee::drain_to_device(ctx, &mut signed).await?.ids);
                shown = decrypt(&mut signed.device, &message);
            }
            let mut value = message_json(&signed, &message, &shown);
            value["event"] = Value::from("message");
            out.event(&value, || message_line(&signed, &message, &shown));
            shown_message = true;
        }
        ServerEvent::ToDevice(message) => {
            let incoming: IncomingToDevice = convert(&message)?;
            if let Some(received) = e2ee::receive_to_device(&mut signed, &incoming).await? {
                ctx.save(&signed)?;
                signed.api.ack_to_device(&[incoming.id]).await?;
                handled.insert(incoming.id);
                if let Some(key) = received {
                    e2ee::learn_names(&mut signed, [key.sender_id]).await;
                    out.event(&json!({"event": "room_key", "key": key}), || {
                        format!("· keys from {} for chat {}", signed.name_of(key.sender_id), key.chat_id)
                    });
                }
            }
        }
        ServerEvent::Typing(typing) => {
            e2ee::learn_names(&mut signed, [typing.user_id]).await;
            let name = signed.name_of(typing.user_id);
            out.event(
                &json!({"event": "typing", "chat_id": typing.chat_id, "user_id": typing.user_id, "user_name": name}),
                || format!("· {name} is typing in {}", typing.chat_id),
            );
        }
        ServerEvent::ChatRead(read) => {
            e2ee::learn_names(&mut signed, [read.user_id]).await;
            let name = signed.name_of(read.user_id);
            out.event(
                &json!({"event": "read", "chat_id": read.chat_id, "user_id": read.user_id, "user_name": name,
                        "up_to_seq": read.up_to_seq}),
                || format!("· {name} read up to #{} in {}", read.up_to_seq, read.chat_id),
            );
        }
        ServerEvent::OneTimeKeysLow(low) => {
            if low.device_id == signed.session.device_id {
                let remaining = u64::try_from(low.remaining).unwrap_or(0);
                e2ee::replenish(&mut signed, remaining, true).await?;
                out.event(&json!({"event": "one_time_keys.replenished", "remaining_before": remaining}), || {
                    format!("· one-time keys topped up ({remaining} were left)")
                });
            }
        }
        ServerEvent::DeviceListChanged(changed) => {
            let reports = e2ee::sync_devices(&mut signed, &[changed.user_id]).await?;
            let name = signed.name_of(changed.user_id);
            let summary: Vec<Value> = reports
                .iter()
                .map(|(user, report)| {
                    json!({"user_id": user, "new_devices": report.new_devices.len(),
                           "removed_devices": report.removed_devices.len(), "key_changes": report.key_changes.len()})
                })
                .collect();
            out.event(&json!({"event": "device_list.changed", "user_id": changed.user_id, "reports": summary}), || {
                format!("· {name}'s devices changed")
            });
        }
        ServerEvent::MessageDeleted(deleted) => {
            out.event(
                &json!({"event": "message.deleted", "chat_id": deleted.chat_id, "message_id": deleted.message_id,
                        "seq": deleted.seq}),
                || format!("· message #{} in {} was deleted", deleted.seq, deleted.chat_id),
            );
        }
        ServerEvent::ChatMemberAdded(added) => {
            e2ee::learn_names(&mut signed, added.user_ids.iter().copied()).await;
            let names: Vec<String> = added.user_ids.iter().map(|user| signed.name_of(*user)).collect();
            out.event(&json!({"event": "member_added", "chat_id": added.chat_id, "user_ids": added.user_ids}), || {
                format!("· {} joined {}", names.join(", "), added.chat_id)
            });
        }
        ServerEvent::ChatMemberRemoved(removed) => {
            let name = signed.name_of(removed.user_id);
            out.event(
                &json!({"event": "member_removed", "chat_id": removed.chat_id, "user_id": removed.user_id}),
                || format!("· {name} left {}", removed.chat_id),
            );
        }
        ServerEvent::Error(error) => {
            warn(&format!("server: {} {}", error.code, error.message));
            if matches!(error.code.as_str(), "session_revoked" | "token_expired" | "invalid_token") {
                ctx.finish(signed)?;
                return Err(CliError::Realtime(format!("{}: {}", error.code, error.message)));
            }
        }
        ServerEvent::CallRinging(ringing) => {
            out.event(
                &json!({"event": "call.ringing", "call_id": ringing.call_id, "chat_id": ringing.chat_id}),
                || {
                    format!(
                        "· {} call ringing in {} (from {})",
                        ringing.kind,
                        ringing.chat_id,
                        short(ringing.initiator_id)
                    )
                },
            );
        }
        ServerEvent::Pong | ServerEvent::AuthOk(_) => {}
        other => {
            if out.json {
                let value = serde_json::to_value(ServerFrame { event: other, cursor: None }).unwrap_or(Value::Null);
                out.event(&json!({"event": "other", "frame": value}), String::new);
            }
        }
    }
    ctx.finish(signed)?;
    Ok(shown_message)
}
