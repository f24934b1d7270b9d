//! `GET /rtc?token=<join token>[&call_id=<call>]`: the signaling WebSocket (see API.md, "SFU
//! signaling"). The token is checked before anything else; a refused one gets an `error` frame
//! and a close frame with the reason, before any media. The client's first frame is its offer;
//! after the answer only the SFU offers, and the client answers.
//!
//! Each join token is admitted once, and not at all once the right it carries has ended (see
//! `rights`). Client frames are capped at `CLIENT_FRAME_MAX`: a larger one closes the socket
//! before anything parses it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use poem::web::websocket::{CloseCode, Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::web::{Data, Query};
use poem::{handler, IntoResponse};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};
use tracing::field::Empty;
use tracing::Instrument;
use uuid::Uuid;

use crate::rights::Rights;
use crate::shard::{JoinError, JoinRequest, ShardInput, Signal};
use crate::token::{JoinClaims, TokenError, TokenVerifier};

/// The largest client frame (and message): SDP offers are a few KiB, even with simulcast.
const CLIENT_FRAME_MAX: usize = 64 * 1024;

/// How long a client may take to send its offer.
const OFFER_TIMEOUT: Duration = Duration::from_secs(10);
/// Close codes in the private range, so clients can tell refusals apart.
const CLOSE_UNAUTHORIZED: u16 = 4001;
const CLOSE_BAD_REQUEST: u16 = 4400;
const CLOSE_REMOVED: u16 = 4408;
const CLOSE_UNAVAILABLE: u16 = 4503;

pub(crate) struct Signaling {
    pub tokens: TokenVerifier,
    pub rights: Arc<Rights>,
    pub shards: Vec<mpsc::Sender<ShardInput>>,
    pub next_participant: AtomicU64,
}

/// Rooms live on the shard their call id picks, so a room's participants share one task.
pub(crate) fn shard_for(shards: &[mpsc::Sender<ShardInput>], call_id: Uuid) -> Option<&mpsc::Sender<ShardInput>> {
    let index = (call_id.as_u128() % shards.len().max(1) as u128) as usize;
    shards.get(index)
}

fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().max_frame_size(Some(CLIENT_FRAME_MAX)).max_message_size(Some(CLIENT_FRAME_MAX))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RtcParams {
    token: Option<String>,
    call_id: Option<Uuid>,
}

/// What a client may send on the socket.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Offer {
        sdp: String,
    },
    Answer {
        sdp: String,
    },
    /// Which simulcast layer (`rid`) to receive on one of this client's mids.
    Layer {
        mid: String,
        rid: String,
    },
    Leave,
    Ping,
}

#[handler]
pub(crate) async fn rtc(
    socket: WebSocket,
    Query(params): Query<RtcParams>,
    Data(signaling): Data<&Arc<Signaling>>,
) -> impl IntoResponse {
    let verdict = signaling
        .tokens
        .verify(params.token.as_deref(), params.call_id)
        .await
        .and_then(|claims| signaling.rights.admit(&claims).map(|()| claims));
    let signaling = Arc::clone(signaling);
    socket.config(socket_config()).on_upgrade(move |stream| async move {
        match verdict {
            Ok(claims) => session(stream, claims, signaling).await,
            Err(error @ (TokenError::NotReady | TokenError::CutOff)) => {
                refuse(stream, CLOSE_UNAVAILABLE, "unavailable", &error.to_string()).await
            }
            Err(error) => refuse(stream, CLOSE_UNAUTHORIZED, "unauthorized", &error.to_string()).await,
        }
    })
}

/// How long a refused or dropped client's socket waits for its close reply.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

async fn refuse(mut stream: WebSocketStream, code: u16, kind: &str, reason: &str) {
    let frame = json!({"type": "error", "code": kind, "reason": reason});
    let _ = stream.send(Message::Text(frame.to_string())).await;
    let _ = stream.send(Message::Close(Some((CloseCode::from(code), reason.to_owned())))).await;
    // Read what the client still sends until its close reply (bounded): dropping the connection
    // with unread client data resets it, and the reset can discard the close frame (and the
    // reason) before the client reads it.
    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

async fn session(mut stream: WebSocketStream, claims: JoinClaims, signaling: Arc<Signaling>) {
    let offer = match tokio::time::timeout(OFFER_TIMEOUT, next_frame(&mut stream)).await {
        Ok(Some(Ok(ClientFrame::Offer { sdp }))) => sdp,
        Ok(Some(Ok(_))) => {
            return refuse(stream, CLOSE_BAD_REQUEST, "bad_request", "the first frame must be an offer").await
        }
        Ok(Some(Err(reason))) => return refuse(stream, CLOSE_BAD_REQUEST, "bad_request", &reason).await,
        Ok(None) => return,
        Err(_) => return refuse(stream, CLOSE_BAD_REQUEST, "bad_request", "no offer within 10 s").await,
    };
    let Some(shard) = shard_for(&signaling.shards, claims.call) else { return };
    let participant = signaling.next_participant.fetch_add(1, Ordering::Relaxed);
    let (signal, mut signals) = mpsc::unbounded_channel();
    let (answered, answer) = oneshot::channel();
    let request = JoinRequest {
        participant,
        call_id: claims.call,
        user_id: claims.sub,
        session_id: claims.sid,
        issued_ms: claims.iat_ms,
        video: claims.allows_video(),
        offer_sdp: offer,
        signal,
        answered,
    };
    if shard.send(ShardInput::Join(request)).await.is_err() {
        return refuse(stream, CLOSE_REMOVED, "unavailable", "the SFU is shutting down").await;
    }
    // The right may have ended while the offer was awaited. An end recorded after this check is
    // sent to the shard after our `Join`, so the shard drops the peer itself.
    if let Some(refusal) = signaling.rights.refusal(&claims) {
        let _ = shard.send(ShardInput::Leave { participant, said: true }).await;
        return refuse(stream, CLOSE_REMOVED, "removed", &refusal.to_string()).await;
    }
    // The shard's work from the offer to the answer (or refusal); the media that follows is not
    // part of it.
    let joining = async {
        let span = tracing::info_span!("sfu.join", call_id = %claims.call, user.id = %claims.sub, outcome = Empty);
        let answered = answer.instrument(span.clone()).await;
        span.record("outcome", if matches!(answered, Ok(Ok(_))) { "answered" } else { "refused" });
        answered
    };
    let answered = parley_runtime::traces::recorded(parley_runtime::traces::sample(), joining).await;
    match answered {
        Ok(Ok(sdp)) => {
            if stream.send(Message::Text(json!({"type": "answer", "sdp": sdp}).to_string())).await.is_err() {
                let _ = shard.send(ShardInput::Leave { participant, said: false }).await;
                return;
            }
        }
        Ok(Err(error @ JoinError::Sdp(_))) => {
            return refuse(stream, CLOSE_BAD_REQUEST, "invalid_sdp", &error.to_string()).await;
        }
        Ok(Err(error)) => return refuse(stream, CLOSE_REMOVED, "unavailable", &error.to_string()).await,
        Err(_) => return,
    }
    // Whether the client said `leave`; a socket that just went away may be back (see
    // `SfuConfig::rejoin_grace`).
    let mut said_leave = false;
    loop {
        tokio::select! {
            frame = next_frame(&mut stream) => match frame {
                Some(Ok(ClientFrame::Answer { sdp })) => {
                    let _ = shard.send(ShardInput::Answer { participant, sdp }).await;
                }
                Some(Ok(ClientFrame::Layer { mid, rid })) => {
                    let _ = shard.send(ShardInput::Layer { participant, mid, rid }).await;
                }
                Some(Ok(ClientFrame::Ping)) => {
                    let _ = stream.send(Message::Text(json!({"type": "pong"}).to_string())).await;
                }
                Some(Ok(ClientFrame::Offer { .. })) => {
                    // Only the SFU offers after the first exchange (no glare); say so, carry on.
                    let frame = json!({"type": "error", "code": "unexpected_offer", "reason": "only the SFU offers after the first exchange"});
                    let _ = stream.send(Message::Text(frame.to_string())).await;
                }
                Some(Err(reason)) => {
                    let frame = json!({"type": "error", "code": "bad_request", "reason": reason});
                    let _ = stream.send(Message::Text(frame.to_string())).await;
                }
                Some(Ok(ClientFrame::Leave)) => {
                    said_leave = true;
                    break;
                }
                None => break,
            },
            signal = signals.recv() => match signal {
                Some(Signal::Offer(sdp)) => {
                    let _ = stream.send(Message::Text(json!({"type": "offer", "sdp": sdp}).to_string())).await;
                }
                Some(Signal::Participants(participants)) => {
                    let frame = json!({"type": "participants", "participants": participants});
                    let _ = stream.send(Message::Text(frame.to_string())).await;
                }
                Some(Signal::Removed(reason)) => {
                    return refuse(stream, CLOSE_REMOVED, "removed", &reason).await;
                }
                Some(Signal::Unavailable(reason)) => {
                    return refuse(stream, CLOSE_UNAVAILABLE, "unavailable", &reason).await;
                }
                None => break,
            },
        }
    }
    let _ = shard.send(ShardInput::Leave { participant, said: said_leave }).await;
    let _ = stream.send(Message::Close(Some((CloseCode::Normal, "left".to_owned())))).await;
}

/// The next client frame: `None` when the socket closed, `Err` with a reason for garbage.
async fn next_frame(stream: &mut WebSocketStream) -> Option<Result<ClientFrame, String>> {
    loop {
        match stream.next().await? {
            Ok(Message::Text(text)) => {
                return Some(parse_client_frame(&text));
            }
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// A client's text frame, or why it is garbage (the reason goes back in an `error` frame).
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, String> {
    serde_json::from_str(text).map_err(|e| format!("unreadable frame: {e}"))
}
