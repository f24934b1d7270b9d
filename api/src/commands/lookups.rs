//! Rows the write side keeps beside an aggregate's events, written in the commit's own statement.
//!
//! The idempotency row of a sent message used to be read back out of the stored event's JSON by
//! the events trigger; parsing that JSON again cost more database time per message than any other
//! part of the trigger. The api has the event in hand, so it passes the row's columns instead.

use cqrs_es::Aggregate;
use parley_domain::call::Call;
use parley_domain::chat::{Chat, ChatEvent};
use parley_domain::inbox::Inbox;
use parley_domain::media::Media;
use parley_domain::session::Session;
use parley_domain::user::User;
use uuid::Uuid;

/// A sent message's `chat_client_messages` row: a second message with the same sender and
/// `client_msg_id` in the chat fails its commit with a unique violation (the retry is answered
/// with the first message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessageRow {
    pub chat_id: Uuid,
    pub sender_id: Uuid,
    pub client_msg_id: String,
    pub message_id: Uuid,
    pub seq: i64,
}

/// What an aggregate's events add to the write side's lookup tables beyond the trigger's work.
pub trait WriteLookups: Aggregate {
    /// The idempotency row `event` needs, if it is a sent message.
    fn client_message(_aggregate_id: &str, _event: &Self::Event) -> Option<ClientMessageRow> {
        None
    }
}

impl WriteLookups for Chat {
    fn client_message(aggregate_id: &str, event: &ChatEvent) -> Option<ClientMessageRow> {
        match event {
            ChatEvent::MessageSent { message_id, sender_id, seq, client_msg_id, .. } => Some(ClientMessageRow {
                // Chat aggregates are only ever created under their UUID.
                chat_id: Uuid::parse_str(aggregate_id).ok()?,
                sender_id: *sender_id,
                client_msg_id: client_msg_id.clone(),
                message_id: *message_id,
                seq: *seq,
            }),
            _ => None,
        }
    }
}

impl WriteLookups for User {}
impl WriteLookups for Session {}
impl WriteLookups for Call {}
impl WriteLookups for Media {}
impl WriteLookups for Inbox {}
impl WriteLookups for parley_domain::device::Device {}
impl WriteLookups for parley_domain::to_device::ToDeviceBatch {}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use parley_domain::sealed;

    fn sent(seq: i64) -> ChatEvent {
        ChatEvent::MessageSent {
            message_id: Uuid::nil(),
            sender_id: Uuid::max(),
            sender_device_id: None,
            seq,
            client_msg_id: "c1".into(),
            body: sealed::seal(&[1; sealed::KEY_BYTES], &[0; sealed::NONCE_BYTES], b"x"),
            algorithm: "x".into(),
            media_ids: Vec::new(),
            reply_to: None,
            sent_at: Utc::now(),
        }
    }

    #[test]
    fn a_sent_message_gives_its_idempotency_row() {
        let chat_id = Uuid::now_v7();
        let row = Chat::client_message(&chat_id.to_string(), &sent(7));
        assert_eq!(
            row,
            Some(ClientMessageRow {
                chat_id,
                sender_id: Uuid::max(),
                client_msg_id: "c1".into(),
                message_id: Uuid::nil(),
                seq: 7
            })
        );
    }

    #[test]
    fn other_events_give_none() {
        let read = ChatEvent::MarkedRead { user_id: Uuid::nil(), seq: 3, at: Utc::now() };
        assert_eq!(Chat::client_message(&Uuid::now_v7().to_string(), &read), None);
    }
}
