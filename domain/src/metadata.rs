//! Who did something and when: stored beside every event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Metadata recorded with every committed event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventMetadata {
    /// The authenticated user who caused the event; `None` for anonymous actions such as registration.
    pub actor_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    /// Correlates the event with the request (and its logs) that caused it.
    pub request_id: Option<String>,
}

impl EventMetadata {
    pub fn new(actor_id: Option<Uuid>, occurred_at: DateTime<Utc>, request_id: Option<String>) -> Self {
        Self { actor_id, occurred_at, request_id }
    }

    /// The string map `cqrs-es` stores in the event store's `metadata` column.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        if let Some(actor) = self.actor_id {
            map.insert("actor_id".to_owned(), actor.to_string());
        }
        map.insert("occurred_at".to_owned(), self.occurred_at.to_rfc3339());
        if let Some(request_id) = &self.request_id {
            map.insert("request_id".to_owned(), request_id.clone());
        }
        map
    }
}
