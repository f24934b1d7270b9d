//! The `Inbox` aggregate: a user's decisions about their notifications (mark read, delete).
//!
//! Notifications themselves are derived by the feed projection from other events (a message that
//! arrived while the user was offline, being added to a group); the inbox records only what the
//! user did with them. Its id is the user's id.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const MAX_IDS_PER_REQUEST: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub enum InboxCommand {
    /// `None`: everything up to `at`.
    MarkRead {
        ids: Option<Vec<Uuid>>,
        at: DateTime<Utc>,
    },
    Delete {
        id: Uuid,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InboxEvent {
    NotificationsMarkedRead {
        #[serde(default)]
        ids: Option<Vec<Uuid>>,
        at: DateTime<Utc>,
    },
    NotificationDeleted {
        id: Uuid,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for InboxEvent {
    fn event_type(&self) -> String {
        match self {
            InboxEvent::NotificationsMarkedRead { .. } => "NotificationsMarkedRead",
            InboxEvent::NotificationDeleted { .. } => "NotificationDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    #[error("at most {MAX_IDS_PER_REQUEST} ids per request")]
    TooManyIds,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbox;

impl Aggregate for Inbox {
    const TYPE: &'static str = "Inbox";
    type Command = InboxCommand;
    type Event = InboxEvent;
    type Error = InboxError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            InboxCommand::MarkRead { ids: Some(ids), .. } if ids.len() > MAX_IDS_PER_REQUEST => {
                return Err(InboxError::TooManyIds)
            }
            InboxCommand::MarkRead { ids: Some(ids), .. } if ids.is_empty() => return Ok(()),
            InboxCommand::MarkRead { ids, at } => InboxEvent::NotificationsMarkedRead { ids, at },
            InboxCommand::Delete { id, at } => InboxEvent::NotificationDeleted { id, at },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn marking_read_and_deleting() {
        let ids = vec![Uuid::from_u128(1)];
        TestFramework::<Inbox>::with(())
            .given_no_previous_events()
            .when(InboxCommand::MarkRead { ids: Some(ids.clone()), at: at() })
            .then_expect_events(vec![InboxEvent::NotificationsMarkedRead { ids: Some(ids), at: at() }]);
        TestFramework::<Inbox>::with(())
            .given_no_previous_events()
            .when(InboxCommand::MarkRead { ids: None, at: at() })
            .then_expect_events(vec![InboxEvent::NotificationsMarkedRead { ids: None, at: at() }]);
        TestFramework::<Inbox>::with(())
            .given_no_previous_events()
            .when(InboxCommand::MarkRead { ids: Some(vec![]), at: at() })
            .then_expect_events(vec![]);
        TestFramework::<Inbox>::with(())
            .given_no_previous_events()
            .when(InboxCommand::MarkRead { ids: Some(vec![Uuid::nil(); MAX_IDS_PER_REQUEST + 1]), at: at() })
            .then_expect_error(InboxError::TooManyIds);
        TestFramework::<Inbox>::with(())
            .given_no_previous_events()
            .when(InboxCommand::Delete { id: Uuid::from_u128(1), at: at() })
            .then_expect_events(vec![InboxEvent::NotificationDeleted { id: Uuid::from_u128(1), at: at() }]);
    }
}
