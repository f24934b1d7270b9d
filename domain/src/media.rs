//! The `Media` aggregate: one uploaded object (a photo, a video, an avatar; client-encrypted
//! bytes the server never reads). Its bytes live in object storage; its events record that they
//! were stored, that the upload was deleted (by its owner, because the message carrying it was
//! deleted for everyone, or because it was never attached), and that the bytes are gone.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const CONTENT_TYPE_MAX_CHARS: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteReason {
    ByOwner,
    /// The message carrying it was deleted for everyone.
    MessageDeleted,
    /// Never attached to a message or profile within the allowed time.
    Unattached,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaCommand {
    Record {
        media_id: Uuid,
        owner_id: Uuid,
        size: i64,
        sha256: String,
        content_type: String,
        storage_key: String,
        at: DateTime<Utc>,
    },
    Delete {
        actor_id: Option<Uuid>,
        reason: DeleteReason,
        at: DateTime<Utc>,
    },
    /// The reaper removed the bytes from storage.
    ObjectRemoved {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MediaEvent {
    MediaUploaded {
        media_id: Uuid,
        owner_id: Uuid,
        size: i64,
        sha256: String,
        content_type: String,
        storage_key: String,
        uploaded_at: DateTime<Utc>,
    },
    MediaDeleted {
        deleted_by: Option<Uuid>,
        reason: DeleteReason,
        at: DateTime<Utc>,
    },
    MediaObjectRemoved {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for MediaEvent {
    fn event_type(&self) -> String {
        match self {
            MediaEvent::MediaUploaded { .. } => "MediaUploaded",
            MediaEvent::MediaDeleted { .. } => "MediaDeleted",
            MediaEvent::MediaObjectRemoved { .. } => "MediaObjectRemoved",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("media already exists")]
    AlreadyExists,
    /// Also what someone who may not see it gets.
    #[error("media not found")]
    NotFound,
    #[error("content type must be 1 to {CONTENT_TYPE_MAX_CHARS} printable characters")]
    InvalidContentType,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub storage_key: Option<String>,
    pub deleted: bool,
    pub object_removed: bool,
}

impl Media {
    fn decide(&self, command: MediaCommand) -> Result<Vec<MediaEvent>, MediaError> {
        Ok(match command {
            MediaCommand::Record { media_id, owner_id, size, sha256, content_type, storage_key, at } => {
                if self.id.is_some() {
                    return Err(MediaError::AlreadyExists);
                }
                let chars = content_type.chars().count();
                if chars == 0 || chars > CONTENT_TYPE_MAX_CHARS || content_type.chars().any(char::is_control) {
                    return Err(MediaError::InvalidContentType);
                }
                vec![MediaEvent::MediaUploaded {
                    media_id,
                    owner_id,
                    size,
                    sha256,
                    content_type,
                    storage_key,
                    uploaded_at: at,
                }]
            }
            MediaCommand::Delete { actor_id, reason, at } => {
                if self.id.is_none() {
                    return Err(MediaError::NotFound);
                }
                // Only its owner deletes it by hand; the system deletes for the other reasons.
                if reason == DeleteReason::ByOwner && (actor_id.is_none() || actor_id != self.owner_id) {
                    return Err(MediaError::NotFound);
                }
                if self.deleted {
                    vec![]
                } else {
                    vec![MediaEvent::MediaDeleted { deleted_by: actor_id, reason, at }]
                }
            }
            MediaCommand::ObjectRemoved { at } => match (self.deleted, self.object_removed) {
                (true, false) => vec![MediaEvent::MediaObjectRemoved { at }],
                _ => vec![],
            },
        })
    }
}

impl Aggregate for Media {
    const TYPE: &'static str = "Media";
    type Command = MediaCommand;
    type Event = MediaEvent;
    type Error = MediaError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            MediaEvent::MediaUploaded { media_id, owner_id, storage_key, .. } => {
                self.id = Some(media_id);
                self.owner_id = Some(owner_id);
                self.storage_key = Some(storage_key);
            }
            MediaEvent::MediaDeleted { .. } => self.deleted = true,
            MediaEvent::MediaObjectRemoved { .. } => self.object_removed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type MediaTest = TestFramework<Media>;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }
    fn owner() -> Uuid {
        Uuid::from_u128(1)
    }
    fn uploaded() -> MediaEvent {
        MediaEvent::MediaUploaded {
            media_id: Uuid::from_u128(9),
            owner_id: owner(),
            size: 3,
            sha256: "abc".into(),
            content_type: "image/jpeg".into(),
            storage_key: "media/9".into(),
            uploaded_at: at(),
        }
    }
    fn record(content_type: &str) -> MediaCommand {
        MediaCommand::Record {
            media_id: Uuid::from_u128(9),
            owner_id: owner(),
            size: 3,
            sha256: "abc".into(),
            content_type: content_type.into(),
            storage_key: "media/9".into(),
            at: at(),
        }
    }

    #[test]
    fn an_upload_is_recorded_once_with_a_sane_content_type() {
        MediaTest::with(()).given_no_previous_events().when(record("image/jpeg")).then_expect_events(vec![uploaded()]);
        MediaTest::with(())
            .given(vec![uploaded()])
            .when(record("image/jpeg"))
            .then_expect_error(MediaError::AlreadyExists);
        MediaTest::with(())
            .given_no_previous_events()
            .when(record(""))
            .then_expect_error(MediaError::InvalidContentType);
        MediaTest::with(())
            .given_no_previous_events()
            .when(record("text/plain\r\nX-Evil: 1"))
            .then_expect_error(MediaError::InvalidContentType);
    }

    #[test]
    fn only_the_owner_deletes_by_hand_and_the_system_for_its_reasons() {
        let delete = |actor: Option<Uuid>, reason| MediaCommand::Delete { actor_id: actor, reason, at: at() };
        MediaTest::with(())
            .given(vec![uploaded()])
            .when(delete(Some(Uuid::from_u128(2)), DeleteReason::ByOwner))
            .then_expect_error(MediaError::NotFound);
        MediaTest::with(())
            .given(vec![uploaded()])
            .when(delete(Some(owner()), DeleteReason::ByOwner))
            .then_expect_events(vec![MediaEvent::MediaDeleted {
                deleted_by: Some(owner()),
                reason: DeleteReason::ByOwner,
                at: at(),
            }]);
        MediaTest::with(())
            .given(vec![uploaded()])
            .when(delete(None, DeleteReason::MessageDeleted))
            .then_expect_events(vec![MediaEvent::MediaDeleted {
                deleted_by: None,
                reason: DeleteReason::MessageDeleted,
                at: at(),
            }]);
        let deleted = MediaEvent::MediaDeleted { deleted_by: None, reason: DeleteReason::Unattached, at: at() };
        MediaTest::with(())
            .given(vec![uploaded(), deleted.clone()])
            .when(delete(Some(owner()), DeleteReason::ByOwner))
            .then_expect_events(vec![]);
    }

    #[test]
    fn bytes_are_removed_once_and_only_after_deletion() {
        let deleted = MediaEvent::MediaDeleted { deleted_by: None, reason: DeleteReason::Unattached, at: at() };
        MediaTest::with(())
            .given(vec![uploaded()])
            .when(MediaCommand::ObjectRemoved { at: at() })
            .then_expect_events(vec![]);
        MediaTest::with(())
            .given(vec![uploaded(), deleted.clone()])
            .when(MediaCommand::ObjectRemoved { at: at() })
            .then_expect_events(vec![MediaEvent::MediaObjectRemoved { at: at() }]);
        MediaTest::with(())
            .given(vec![uploaded(), deleted, MediaEvent::MediaObjectRemoved { at: at() }])
            .when(MediaCommand::ObjectRemoved { at: at() })
            .then_expect_events(vec![]);
    }
}
