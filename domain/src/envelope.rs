//! The form in which committed events travel on the bus (NATS JetStream) to projectors.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One committed event as published by the relay.
///
/// `position` is the event store's global, gap-tolerant commit counter; `sequence` is the event's
/// number within its aggregate (1, 2, 3, ... without gaps), which projectors use for idempotency.
///
/// `payload` and `metadata` stay JSON text: the relay passes them from the event store to the
/// bus unparsed, and a projector decodes a payload straight into its event type (`decode`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: String,
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Box<RawValue>,
    pub metadata: Box<RawValue>,
}

impl EventEnvelope {
    /// A stable id for an event: the same event always gets the same id, which makes it usable as
    /// the JetStream de-duplication key (`Nats-Msg-Id`).
    pub fn id_for(aggregate_type: &str, aggregate_id: &str, sequence: i64) -> String {
        format!("{aggregate_type}:{aggregate_id}:{sequence}")
    }

    /// The payload as the event type `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.payload.get())
    }

    /// The subject an event is published on: `<prefix>.<aggregate type>.<aggregate id>`.
    pub fn subject(prefix: &str, aggregate_type: &str, aggregate_id: &str) -> String {
        format!("{prefix}.{aggregate_type}.{aggregate_id}")
    }
}
