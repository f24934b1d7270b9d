//! The `ToDeviceBatch` aggregate: one batch of end-to-end encrypted messages addressed to
//! devices (room keys, mostly), sent once. The sender is the server's word: the user and device
//! of the session that sent it, never a field the client fills in. Each message gets its id here,
//! so a rebuilt read model acknowledges the same ids.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Messages one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// Characters of one message's opaque ciphertext.
pub const MAX_CIPHERTEXT_CHARS: usize = 16 * 1024;
/// Bytes of ciphertext one batch's event may carry: every event must fit in one NATS message
/// (1 MiB by default) with room to spare, or the outbox relay could never publish it. The api
/// splits a larger request into several batches.
pub const MAX_BATCH_CIPHERTEXT_BYTES: usize = 256 * 1024;

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
    #[error("a batch carries 1 to {MAX_BATCH} messages, {MAX_BATCH_CIPHERTEXT_BYTES} bytes of ciphertext at most")]
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
        if messages.is_empty()
            || messages.len() > MAX_BATCH
            || messages.iter().map(|m| m.ciphertext.len()).sum::<usize>() > MAX_BATCH_CIPHERTEXT_BYTES
        {
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
        sink.write(ToDeviceEvent::ToDeviceBatchSent { sender_id, sender_device_id, messages, sent_at: at }, self).await;
        Ok(())
    }

    fn apply(&mut self, _: Self::Event) {
        self.sent = true;
    }
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
    fn a_batch_fits_in_one_nats_message() {
        let big = "z".repeat(MAX_CIPHERTEXT_CHARS);
        BatchTest::with(())
            .given_no_previous_events()
            .when(send(vec![message(&big); MAX_BATCH_CIPHERTEXT_BYTES / MAX_CIPHERTEXT_CHARS + 1]))
            .then_expect_error(ToDeviceError::BadBatchSize);
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
