//! Chat events as projections apply them: runs of sent messages (the bulk of all events) are
//! applied together, everything else one event at a time, in order.

use chrono::{DateTime, Utc};
use parley_domain::chat::ChatEvent;
use parley_domain::sealed::SealedBody;
use parley_domain::EventEnvelope;
use uuid::Uuid;

use crate::ProjectionError;

/// A `MessageSent` event with its chat.
pub struct SentMessage {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub sender_id: Uuid,
    pub sender_device_id: Option<Uuid>,
    pub seq: i64,
    pub client_msg_id: String,
    pub body: SealedBody,
    pub algorithm: String,
    pub media_ids: Vec<Uuid>,
    pub reply_to: Option<Uuid>,
    /// The sampled trace that sent it, if any (its frames continue it).
    pub traceparent: Option<String>,
    pub sent_at: DateTime<Utc>,
}

pub enum Step<'a> {
    /// Consecutive `MessageSent` events (of any chats), in order.
    Sent(Vec<SentMessage>),
    /// Any other event, applied on its own.
    Other(&'a EventEnvelope),
}

pub fn decode_error(event: &EventEnvelope, message: &str) -> ProjectionError {
    ProjectionError::Decode { event_id: event.event_id.clone(), source: serde::de::Error::custom(message) }
}

/// The event's aggregate id as a UUID (every Parley aggregate id is one).
pub fn aggregate_uuid(event: &EventEnvelope) -> Result<Uuid, ProjectionError> {
    Uuid::parse_str(&event.aggregate_id).map_err(|_| decode_error(event, "aggregate id is not a UUID"))
}

/// Splits `events` into runs of sent messages and single other events, keeping their order.
pub fn steps(events: &[EventEnvelope]) -> Result<Vec<Step<'_>>, ProjectionError> {
    let mut steps = Vec::new();
    let mut run = Vec::new();
    for event in events {
        if event.aggregate_type == "Chat" && event.event_type == "MessageSent" {
            run.push(sent_message(event)?);
            continue;
        }
        if !run.is_empty() {
            steps.push(Step::Sent(std::mem::take(&mut run)));
        }
        steps.push(Step::Other(event));
    }
    if !run.is_empty() {
        steps.push(Step::Sent(run));
    }
    Ok(steps)
}

pub fn sent_message(event: &EventEnvelope) -> Result<SentMessage, ProjectionError> {
    let chat_id = aggregate_uuid(event)?;
    let decoded: ChatEvent =
        event.decode().map_err(|source| ProjectionError::Decode { event_id: event.event_id.clone(), source })?;
    match decoded {
        ChatEvent::MessageSent {
            message_id,
            sender_id,
            sender_device_id,
            seq,
            client_msg_id,
            body,
            algorithm,
            media_ids,
            reply_to,
            sent_at,
        } => Ok(SentMessage {
            chat_id,
            message_id,
            sender_id,
            sender_device_id,
            seq,
            client_msg_id,
            body,
            algorithm,
            media_ids,
            reply_to,
            sent_at,
            traceparent: parley_runtime::traces::stored_in(event.metadata.get()),
        }),
        _ => Err(decode_error(event, "not a MessageSent event")),
    }
}
