//! `GET /ws`: realtime frames for the connected user.
//!
//! Frames come from the user's feed (`user_feed`, written by the `feed` projection) in cursor
//! order. The projection publishes each new frame on core NATS (`<prefix>.user.<id>`), which
//! reaches every api replica's hub (`hub`), which hands it to that user's sockets there, with the
//! user's cursor before it: when that is the last cursor this socket sent, the frame goes straight
//! out; otherwise (a gap, a duplicate from another projector replica, a socket that fell behind)
//! the socket reads its feed from the database, and a slow poll (`PARLEY_WS_POLL_SECS`) covers
//! anything lost. A reconnect with `?cursor=` replays exactly the frames after that
//! cursor. Typing indicators are ephemeral: sent straight to the other members, never stored.
//!
//! A socket lives only as long as its right to: it is closed (4001) when its session is revoked
//! (logout, refresh-token reuse; see `auth::revocation`) and when its access token expires, unless
//! the client sent a fresh token first (`{"type": "auth", "token"}`, answered `auth.ok`).

pub mod hub;
mod typing;

pub use typing::TypingGate;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use poem::web::websocket::{Message, WebSocket, WebSocketConfig, WebSocketStream};
use poem::web::{Data, Query};
use poem::{handler, IntoResponse, Request};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::revocation::SocketWatch;
use crate::auth::tokens::AccessClaims;
use crate::error::ApiError;
use crate::state::AppState;
use parley_eventbus::stream::{feed_frame_text, RealtimeMessage};

const FEED_BATCH: i64 = 500;

#[derive(Debug, Deserialize)]
pub struct WsParams {
    token: Option<String>,
    cursor: Option<String>,
}

/// What a client may send on the socket (public for the fuzz targets, fuzz/).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Ping,
    Typing {
        chat_id: Uuid,
    },
    /// A fresh access token of the same user, before the current one expires.
    Auth {
        token: String,
    },
}

/// The close code of a socket whose right ended: session revoked, token expired or refused.
const CLOSE_UNAUTHORIZED: u16 = 4001;

/// The subprotocol a browser offers, followed by its token, when it cannot set headers and
/// should not put the token in the URL: `Sec-WebSocket-Protocol: bearer, <access token>`.
const BEARER_PROTOCOL: &str = "bearer";

/// Clients only send small frames (typing, pings). tungstenite zero-fills its whole read buffer
/// before every read attempt, which the session loop makes each time it wakes: with the default
/// 128 KiB that `memset` was 8 % of the api's CPU in the messaging benchmark.
fn socket_config() -> WebSocketConfig {
    const CLIENT_FRAME_MAX: usize = 64 * 1024;
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_frame_size(Some(CLIENT_FRAME_MAX))
        .max_message_size(Some(CLIENT_FRAME_MAX))
}

/// The access token from `?token=`, `Authorization: Bearer`, or `Sec-WebSocket-Protocol`.
fn bearer(req: &Request, params: &WsParams) -> Option<String> {
    params
        .token
        .clone()
        .or_else(|| req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")).map(str::to_owned))
        .or_else(|| {
            let offered = req.header("sec-websocket-protocol")?;
            let mut protocols = offered.split(',').map(str::trim);
            protocols.find(|p| *p == BEARER_PROTOCOL)?;
            protocols.next().filter(|t| !t.is_empty()).map(str::to_owned)
        })
}

#[handler]
pub(crate) async fn connect(
    req: &Request,
    socket: WebSocket,
    Query(params): Query<WsParams>,
    Data(state): Data<&Arc<AppState>>,
) -> poem::Result<impl IntoResponse> {
    let token = bearer(req, &params).ok_or_else(|| ApiError::Unauthorized("missing access token".into()))?;
    let claims = state
        .tokens
        .verify_access(&token)
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired access token".into()))?;
    if state.revocations.is_revoked(claims.sid) {
        return Err(ApiError::Unauthorized("this session has been signed out".into()).into());
    }
    let cursor = match params.cursor.as_deref() {
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|c| *c >= 0)
                .ok_or_else(|| ApiError::invalid("invalid_cursor", "cursor is not valid"))?,
        ),
        None => None,
    };
    // Fixed before the upgrade answer goes out: a frame committed while the session task starts
    // must still count as after the client's starting point.
    let cursor = match cursor {
        Some(cursor) => cursor,
        None => sqlx::query_scalar!(
            r#"SELECT COALESCE(max(cursor), 0) AS "cursor!" FROM user_feed WHERE user_id = $1"#,
            claims.sub
        )
        .fetch_one(&state.pool)
        .await
        .map_err(ApiError::from)?,
    };
    let state = Arc::clone(state);
    // Selected when offered (browsers refuse an upgrade that picks none of their protocols).
    Ok(socket.protocols([BEARER_PROTOCOL]).config(socket_config()).on_upgrade(move |stream| async move {
        let user_id = claims.sub;
        tracing::debug!(%user_id, "websocket connected");
        let _open = state.metrics.socket_opened();
        let connection_id = Uuid::new_v4();
        let presence =
            Presence { pool: state.pool.clone(), connection_id, user_id, replica_id: state.realtime_hub.replica_id };
        if let Err(error) = presence.mark().await {
            tracing::warn!(%user_id, %error, "could not record presence");
        }
        if let Err(error) = Session::new(state, &claims).run(stream, cursor).await {
            tracing::debug!(%user_id, %error, "websocket ended with an error");
        }
        if let Err(error) = presence.clear().await {
            tracing::warn!(%user_id, %error, "could not clear presence");
        }
    }))
}

fn frame(kind: &str, data: Value, cursor: Option<i64>) -> Message {
    Message::Text(json!({"type": kind, "data": data, "cursor": cursor.map(|c| c.to_string())}).to_string())
}

/// This connection's row in `presence`, which tells the feed projection who is online (offline
/// members get notifications). Refreshed by the hub; a crashed replica's rows go stale.
struct Presence {
    pool: sqlx::PgPool,
    connection_id: Uuid,
    user_id: Uuid,
    /// The replica holding it: its row in `presence_replicas` is what the hub keeps fresh.
    replica_id: Uuid,
}

impl Presence {
    async fn mark(&self) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO presence (connection_id, user_id, replica_id) VALUES ($1, $2, $3) \
             ON CONFLICT (connection_id) DO UPDATE SET last_seen = now()",
            self.connection_id,
            self.user_id,
            self.replica_id
        )
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    async fn clear(&self) -> Result<(), sqlx::Error> {
        sqlx::query!("DELETE FROM presence WHERE connection_id = $1", self.connection_id)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

struct Session {
    state: Arc<AppState>,
    user_id: Uuid,
    /// The device of the session the socket was opened with: its to-device messages come here.
    device_id: Uuid,
    last_cursor: i64,
    /// Fires when the session of the token the socket was opened (or last re-authenticated)
    /// with is revoked.
    revocation: SocketWatch,
    /// When that token expires.
    token_expires: tokio::time::Instant,
    typing_allowance: typing::SocketAllowance,
}

/// When an access token's `exp` falls, as a monotonic instant.
fn expiry_instant(claims: &AccessClaims) -> tokio::time::Instant {
    let left = claims.exp.saturating_sub(chrono::Utc::now().timestamp()).max(0);
    tokio::time::Instant::now() + Duration::from_secs(left.unsigned_abs())
}

/// How long a closing socket waits for the client's close reply.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(1);

/// After our close frame: reads (and ignores) what the client still sends until its close reply,
/// for at most `CLOSE_REPLY_WAIT`. Dropping the connection with unread client data in the kernel
/// resets it, and a reset can discard our close frame before the client reads it.
async fn await_close_reply<S, E>(incoming: &mut S)
where
    S: futures::Stream<Item = Result<Message, E>> + Unpin,
{
    let _ = tokio::time::timeout(CLOSE_REPLY_WAIT, async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

fn close_unauthorized(reason: &str) -> Message {
    Message::Close(Some((poem::web::websocket::CloseCode::from(CLOSE_UNAUTHORIZED), reason.to_owned())))
}

impl Session {
    fn new(state: Arc<AppState>, claims: &AccessClaims) -> Self {
        let revocation = state.revocations.watch(claims.sid);
        Self {
            state,
            user_id: claims.sub,
            device_id: claims.sid,
            last_cursor: 0,
            revocation,
            token_expires: expiry_instant(claims),
            typing_allowance: typing::SocketAllowance::default(),
        }
    }

    async fn run(mut self, stream: WebSocketStream, cursor: i64) -> anyhow::Result<()> {
        let (sink, mut incoming) = stream.split();
        let state = Arc::clone(&self.state);
        let mut sink = sink.with(move |message: Message| {
            if matches!(message, Message::Text(_)) {
                state.metrics.websocket_frame(true);
            }
            futures::future::ready(Ok::<_, std::io::Error>(message))
        });
        // Registered before reading the feed and the queue, so nothing committed in between is missed.
        let (registration, mut wakes) = self.state.realtime_hub.register(self.user_id, self.device_id);
        self.last_cursor = cursor;
        tracing::debug!(user_id = %self.user_id, cursor, "websocket session started");
        self.deliver(&mut sink).await?;
        self.deliver_to_device_queue(&mut sink).await?;
        let idle_timeout = self.state.config.ws_idle_timeout;
        let mut heartbeat = tokio::time::interval(idle_timeout / 3);
        // Sockets opened together do not poll together.
        let poll_every = self.state.config.ws_poll;
        let first_poll = poll_every.mul_f64(0.5 + rand::random::<f64>());
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + first_poll, poll_every);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                message = incoming.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        self.state.metrics.websocket_frame(false);
                        if !self.on_client_frame(&text, &mut sink).await? {
                            await_close_reply(&mut incoming).await;
                            return Ok(());
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        tracing::debug!(user_id = %self.user_id, "websocket closed by the client");
                        return Ok(());
                    }
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
                wake = wakes.recv() => {
                    match wake {
                        Some(hub::Wake::Published(message)) => match traceparent(&message) {
                            // A frame of a sampled trace: its delivery joins it.
                            Some(traceparent) => {
                                let delivery = async {
                                    let span = tracing::info_span!("ws.deliver", otel.kind = "consumer");
                                    parley_runtime::traces::continue_from(&span, traceparent);
                                    self.forward(&message, &mut sink).instrument(span).await
                                };
                                parley_runtime::traces::recorded(true, delivery).await?;
                            }
                            None => self.forward(&message, &mut sink).await?,
                        },
                        Some(hub::Wake::CatchUp) => {}
                        None => return Ok(()),
                    }
                    // Something meant for this socket could not be queued: the feed has it.
                    if registration.behind.swap(false, std::sync::atomic::Ordering::AcqRel) {
                        self.deliver(&mut sink).await?;
                    }
                }
                _ = poll.tick() => self.deliver(&mut sink).await?,
                _ = self.revocation.revoked() => {
                    tracing::debug!(user_id = %self.user_id, "websocket closed: session revoked");
                    sink.send(frame("error", json!({"code": "session_revoked", "message": "this session has been signed out"}), None)).await?;
                    sink.send(close_unauthorized("session revoked")).await?;
                    await_close_reply(&mut incoming).await;
                    return Ok(());
                }
                _ = tokio::time::sleep_until(self.token_expires) => {
                    tracing::debug!(user_id = %self.user_id, "websocket closed: access token expired");
                    sink.send(frame("error", json!({"code": "token_expired", "message": "the access token expired; reconnect or send an auth frame before it does"}), None)).await?;
                    sink.send(close_unauthorized("access token expired")).await?;
                    await_close_reply(&mut incoming).await;
                    return Ok(());
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > idle_timeout {
                        let reason = poem::web::websocket::CloseCode::Away;
                        sink.send(Message::Close(Some((reason, "idle timeout".into())))).await?;
                        return Ok(());
                    }
                    sink.send(Message::Ping(Vec::new())).await?;
                }
            }
        }
    }

    /// Sends on what a projector (or another replica) published for this socket.
    async fn forward<S>(&mut self, message: &async_nats::Message, sink: &mut S) -> anyhow::Result<()>
    where
        S: futures::Sink<Message, Error = std::io::Error> + Unpin,
    {
        match RealtimeMessage::decode(&message.payload) {
            Some(RealtimeMessage::Frame { prev_cursor, cursor, text }) => {
                if prev_cursor == self.last_cursor {
                    sink.send(Message::Text(text.to_owned())).await?;
                    self.last_cursor = cursor;
                } else if cursor > self.last_cursor {
                    self.deliver(sink).await?;
                }
            }
            Some(RealtimeMessage::Ephemeral(text)) => sink.send(Message::Text(text.to_owned())).await?,
            None => tracing::warn!(user_id = %self.user_id, "ignoring an undecodable realtime message"),
        }
        Ok(())
    }

    /// Sends the device's waiting to-device messages (those that arrived while it was away; the
    /// client acknowledges what it processed, and may see one twice if it also drains them).
    async fn deliver_to_device_queue<S>(&mut self, sink: &mut S) -> anyhow::Result<()>
    where
        S: futures::Sink<Message, Error = std::io::Error> + Unpin,
    {
        const QUEUE_BATCH: i64 = 500;
        let ttl_secs = self.state.config.to_device_ttl.as_secs_f64();
        let mut after = 0;
        loop {
            let rows =
                crate::keys::queries::queued(&self.state.pool, self.device_id, after, QUEUE_BATCH, ttl_secs).await?;
            let full = rows.len() as i64 == QUEUE_BATCH;
            for row in rows {
                after = row.position;
                let data = json!({
                    "id": row.id,
                    "sender_id": row.sender_id,
                    "sender_device_id": row.sender_device_id,
                    "ciphertext": row.ciphertext,
                    "created_at": row.created_at,
                });
                sink.send(frame("to_device", data, None)).await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends every stored feed frame after `last_cursor`.
    async fn deliver<S>(&mut self, sink: &mut S) -> anyhow::Result<()>
    where
        S: futures::Sink<Message, Error = std::io::Error> + Unpin,
    {
        loop {
            let rows = sqlx::query!(
                // A message's frame is shared by its recipients (`feed_messages`); one they hid
                // for themselves is left out.
                r#"SELECT f.cursor, f.kind, COALESCE(f.data, m.data)::text AS "data!" FROM user_feed f
                   LEFT JOIN feed_messages m ON f.data IS NULL AND m.message_id = f.message_id
                   WHERE f.user_id = $1 AND f.cursor > $2
                     AND NOT EXISTS (SELECT 1 FROM feed_hidden h WHERE h.user_id = $1 AND h.message_id = f.message_id)
                   ORDER BY f.cursor LIMIT $3"#,
                self.user_id,
                self.last_cursor,
                FEED_BATCH
            )
            .fetch_all(&self.state.pool)
            .await?;
            let full = rows.len() as i64 == FEED_BATCH;
            for row in rows {
                let (cursor, kind, data) = (row.cursor, row.kind, row.data);
                sink.send(Message::Text(feed_frame_text(&kind, &data, cursor))).await?;
                self.last_cursor = cursor;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Answers one client frame; `false` when the socket must close (it was told why).
    async fn on_client_frame<S>(&mut self, text: &str, sink: &mut S) -> anyhow::Result<bool>
    where
        S: futures::Sink<Message, Error = std::io::Error> + Unpin,
    {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame::Ping) => sink.send(frame("pong", Value::Null, None)).await?,
            Ok(ClientFrame::Typing { chat_id }) => self.typing(chat_id, sink).await?,
            Ok(ClientFrame::Auth { token }) => return self.reauthenticate(&token, sink).await,
            Err(error) => {
                sink.send(frame("error", json!({"code": "invalid_frame", "message": error.to_string()}), None)).await?;
            }
        }
        Ok(true)
    }

    /// Takes a fresh access token of the same user: the socket then lives until it expires, and
    /// ends with its session.
    async fn reauthenticate<S>(&mut self, token: &str, sink: &mut S) -> anyhow::Result<bool>
    where
        S: futures::Sink<Message, Error = std::io::Error> + Unpin,
    {
        let claims = self
            .state
            .tokens
            .verify_access(token)
            .filter(|claims| claims.sub == self.user_id && !self.state.revocations.is_revoked(claims.sid));
        let Some(claims) = claims else {
            let refusal =
                json!({"code": "invalid_token", "message": "the token is invalid, expired, revoked or another user's"});
            sink.send(frame("error", refusal, None)).await?;
            sink.send(close_unauthorized("invalid token")).await?;
            return Ok(false);
        };
        if claims.sid != self.revocation.session_id() {
            self.revocation = self.state.revocations.watch(claims.sid);
        }
        self.token_expires = expiry_instant(&claims);
        let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0).map(|t| t.to_rfc3339());
        sink.send(frame("auth.ok", json!({"expires_at": expires_at}), None)).await?;
        Ok(true)
    }

    /// Tells the chat's other members that this user is typing. Frames over the documented rate
    /// are dropped without an answer (see `typing`).
    async fn typing<S>(&mut self, chat_id: Uuid, sink: &mut S) -> anyhow::Result<()>
    where
        S: futures::Sink<Message, Error = std::io::Error> + Unpin,
    {
        if !self.typing_allowance.take() || !self.state.typing.admit(self.user_id, chat_id) {
            return Ok(());
        }
        let members = self.state.typing.members(&self.state.pool, chat_id).await?;
        if !members.contains(&self.user_id) {
            sink.send(frame("error", json!({"code": "not_found", "message": "chat not found"}), None)).await?;
            return Ok(());
        }
        let typing = json!({"type": "typing", "data": {"chat_id": chat_id, "user_id": self.user_id}, "cursor": null})
            .to_string();
        let typing = RealtimeMessage::Ephemeral(&typing).encode();
        for member in members.iter().filter(|member| **member != self.user_id) {
            let subject = parley_eventbus::stream::realtime_subject(&self.state.config.realtime_prefix, member);
            self.state.nats.publish(subject, typing.clone().into()).await?;
        }
        Ok(())
    }
}

/// The trace a realtime message carries, if any (most frames are not sampled).
fn traceparent(message: &async_nats::Message) -> Option<&str> {
    message.headers.as_ref()?.get(parley_runtime::traces::TRACEPARENT).map(|value| value.as_str())
}
