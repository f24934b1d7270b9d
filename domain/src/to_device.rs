//! The `ToDeviceBatch` aggregate: one batch of end-to-end encrypted messages addressed to
//! devices (room keys, mostly), sent once, recorded as one or more consecutive events. The
//! sender is the server's word: the user and device of the session that sent it, never a field
//! the client fills in. Each message gets its id here, so a rebuilt read model acknowledges the
//! same ids.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Messages one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// Characters of one message's opaque ciphertext.
pub const MAX_CIPHERTEXT_CHARS: usize = 16 * 1024;
/// Bytes of ciphertext one event may carry: every event must fit in one NATS message (1 MiB by
/// default) with room to spare, or the outbox relay could never publish it. A larger batch is
/// recorded as consecutive events, in the batch's order.
pub const MAX_EVENT_CIPHERTEXT_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceMessage {
    pub id: Uuid,
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub ciphertext: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ToDeviceCommand {
    Send { sender_id: Uuid, sender_device_id: Uuid, messages: Vec<ToDeviceMessage>, at: DateTime<Utc> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToDeviceEvent {
    ToDeviceBatchSent {
        sender_id: Uuid,
        sender_device_id: Uuid,
        messages: Vec<ToDeviceMessage>,
        sent_at: DateTime<Utc>,
    },
}

impl DomainEvent for ToDeviceEvent {
    fn event_type(&self) -> String {
        "ToDeviceBatchSent".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToDeviceError {
    #[error("this batch was already sent")]
    AlreadySent,
    #[error("a batch carries 1 to {MAX_BATCH} messages")]
    BadBatchSize,
    #[error("a message's ciphertext is 1 to {MAX_CIPHERTEXT_CHARS} characters, without NUL")]
    BadCiphertext,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToDeviceBatch {
    pub sent: bool,
}

impl Aggregate for ToDeviceBatch {
    const TYPE: &'static str = "ToDeviceBatch";
    type Command = ToDeviceCommand;
    type Event = ToDeviceEvent;
    type Error = ToDeviceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let ToDeviceCommand::Send { sender_id, sender_device_id, messages, at } = command;
        if self.sent {
            return Err(ToDeviceError::AlreadySent);
        }
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(ToDeviceError::BadBatchSize);
        }
        // NUL is refused here because the read model could not store it.
        if messages.iter().any(|m| {
            m.ciphertext.is_empty()
                || m.ciphertext.chars().count() > MAX_CIPHERTEXT_CHARS
                || m.ciphertext.contains('\0')
        }) {
            return Err(ToDeviceError::BadCiphertext);
        }
        for part in event_parts(messages) {
            let event = ToDeviceEvent::ToDeviceBatchSent { sender_id, sender_device_id, messages: part, sent_at: at };
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, _: Self::Event) {
        self.sent = true;
    }
}

/// `messages` in order, cut into parts of at most `MAX_EVENT_CIPHERTEXT_BYTES` of ciphertext.
fn event_parts(messages: Vec<ToDeviceMessage>) -> Vec<Vec<ToDeviceMessage>> {
    let mut parts: Vec<Vec<ToDeviceMessage>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let size = message.ciphertext.len();
        match parts.last_mut() {
            Some(part) if bytes + size <= MAX_EVENT_CIPHERTEXT_BYTES => part.push(message),
            _ => {
                bytes = 0;
                parts.push(vec![message]);
            }
        }
        bytes += size;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type BatchTest = TestFramework<ToDeviceBatch>;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }
    fn message(ciphertext: &str) -> ToDeviceMessage {
        ToDeviceMessage {
            id: Uuid::from_u128(7),
            user_id: Uuid::from_u128(2),
            device_id: Uuid::from_u128(3),
            ciphertext: ciphertext.into(),
        }
    }
    fn send(messages: Vec<ToDeviceMessage>) -> ToDeviceCommand {
        ToDeviceCommand::Send {
            sender_id: Uuid::from_u128(1),
            sender_device_id: Uuid::from_u128(4),
            messages,
            at: at(),
        }
    }

    #[test]
    fn a_large_batch_is_recorded_in_order_as_events_that_each_fit_a_nats_message() {
        let messages: Vec<ToDeviceMessage> = (0..100)
            .map(|i| ToDeviceMessage { id: Uuid::from_u128(i), ..message(&"z".repeat(MAX_CIPHERTEXT_CHARS)) })
            .collect();
        let parts = event_parts(messages.clone());
        assert_eq!(parts.len(), 7);
        assert!(parts
            .iter()
            .all(|p| p.iter().map(|m| m.ciphertext.len()).sum::<usize>() <= MAX_EVENT_CIPHERTEXT_BYTES));
        let events: Vec<ToDeviceEvent> = parts
            .into_iter()
            .map(|part| ToDeviceEvent::ToDeviceBatchSent {
                sender_id: Uuid::from_u128(1),
                sender_device_id: Uuid::from_u128(4),
                messages: part,
                sent_at: at(),
            })
            .collect();
        let recorded: Vec<ToDeviceMessage> =
            events.iter().flat_map(|ToDeviceEvent::ToDeviceBatchSent { messages, .. }| messages.clone()).collect();
        assert_eq!(recorded, messages, "every message once, in the batch's order");
        BatchTest::with(()).given_no_previous_events().when(send(messages)).then_expect_events(events);
        assert_eq!(event_parts(vec![message("x")]).len(), 1);
    }

    #[test]
    fn a_batch_is_sent_once_within_its_bounds() {
        let sent = ToDeviceEvent::ToDeviceBatchSent {
            sender_id: Uuid::from_u128(1),
            sender_device_id: Uuid::from_u128(4),
            messages: vec![message("x")],
            sent_at: at(),
        };
        BatchTest::with(())
            .given_no_previous_events()
            .when(send(vec![message("x")]))
            .then_expect_events(vec![sent.clone()]);
        BatchTest::with(())
            .given(vec![sent])
            .when(send(vec![message("x")]))
            .then_expect_error(ToDeviceError::AlreadySent);
        BatchTest::with(())
            .given_no_previous_events()
            .when(send(vec![]))
            .then_expect_error(ToDeviceError::BadBatchSize);
        BatchTest::with(())
            .given_no_previous_events()
            .when(send(vec![message("x"); MAX_BATCH + 1]))
            .then_expect_error(ToDeviceError::BadBatchSize);
        BatchTest::with(())
            .given_no_previous_events()
            .when(send(vec![message("")]))
            .then_expect_error(ToDeviceError::BadCiphertext);
        BatchTest::with(())
            .given_no_previous_events()
            .when(send(vec![message(&"y".repeat(MAX_CIPHERTEXT_CHARS + 1))]))
            .then_expect_error(ToDeviceError::BadCiphertext);
    }
}
