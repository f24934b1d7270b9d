//! The `User` aggregate: an account and its public profile.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::serde_helpers::double_option;

pub const NAME_MAX_CHARS: usize = 64;
pub const STATUS_MAX_CHARS: usize = 140;
pub const EMAIL_MAX_CHARS: usize = 254;

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Register {
        user_id: Uuid,
        name: String,
        email: String,
        /// An Argon2id PHC string; the domain never sees the password itself.
        password_hash: String,
        avatar_media_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    UpdateProfile {
        actor_id: Uuid,
        name: Option<String>,
        status: Option<String>,
        /// `Some(None)` removes the avatar.
        avatar_media_id: Option<Option<Uuid>>,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UserEvent {
    UserRegistered {
        user_id: Uuid,
        name: String,
        /// Normalised (trimmed, lower case); unique across users.
        email: String,
        password_hash: String,
        #[serde(default)]
        avatar_media_id: Option<Uuid>,
        registered_at: DateTime<Utc>,
    },
    ProfileUpdated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        #[serde(default, deserialize_with = "double_option", skip_serializing_if = "Option::is_none")]
        avatar_media_id: Option<Option<Uuid>>,
        updated_at: DateTime<Utc>,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered",
            UserEvent::ProfileUpdated { .. } => "ProfileUpdated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("this account already exists")]
    AlreadyRegistered,
    #[error("no such user")]
    NotFound,
    #[error("you may only change your own profile")]
    NotOwner,
    #[error("name must be 1 to {NAME_MAX_CHARS} characters without control characters")]
    InvalidName,
    #[error("status must be at most {STATUS_MAX_CHARS} characters without control characters")]
    InvalidStatus,
    #[error("email address is not valid")]
    InvalidEmail,
}

/// The state a `User` command needs to decide.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Option<Uuid>,
    pub name: String,
    pub email: String,
    pub password_hash: String,
    pub status: String,
    pub avatar_media_id: Option<Uuid>,
    pub created_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn is_registered(&self) -> bool {
        self.id.is_some()
    }
}

/// Trims a display name and checks it.
pub fn normalize_name(name: &str) -> Result<String, UserError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        return Err(UserError::InvalidName);
    }
    Ok(name.to_owned())
}

/// Trims a status line and checks it; an empty status is allowed.
pub fn normalize_status(status: &str) -> Result<String, UserError> {
    let status = status.trim();
    if status.chars().count() > STATUS_MAX_CHARS || status.chars().any(char::is_control) {
        return Err(UserError::InvalidStatus);
    }
    Ok(status.to_owned())
}

/// Trims and lower-cases an email address and checks its shape (`local@domain.tld`).
///
/// Deliverability is not checked here: that needs a verification mail, which is out of scope.
pub fn normalize_email(email: &str) -> Result<String, UserError> {
    let email = email.trim();
    // Checked before anything else touches it: the text may be as long as a request body.
    if email.len() > EMAIL_MAX_CHARS {
        return Err(UserError::InvalidEmail);
    }
    let email = email.to_lowercase();
    if email.len() > EMAIL_MAX_CHARS || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(UserError::InvalidEmail);
    }
    let (local, domain) = email.split_once('@').ok_or(UserError::InvalidEmail)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err(UserError::InvalidEmail);
    }
    Ok(email)
}

impl Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            UserCommand::Register { user_id, name, email, password_hash, avatar_media_id, at } => {
                if self.is_registered() {
                    return Err(UserError::AlreadyRegistered);
                }
                let event = UserEvent::UserRegistered {
                    user_id,
                    name: normalize_name(&name)?,
                    email: normalize_email(&email)?,
                    password_hash,
                    avatar_media_id,
                    registered_at: at,
                };
                sink.write(event, self).await;
            }
            UserCommand::UpdateProfile { actor_id, name, status, avatar_media_id, at } => {
                let id = self.id.ok_or(UserError::NotFound)?;
                if id != actor_id {
                    return Err(UserError::NotOwner);
                }
                let name = name.as_deref().map(normalize_name).transpose()?;
                let status = status.as_deref().map(normalize_status).transpose()?;
                // Only record what actually changes: a no-op update leaves no event.
                let name = name.filter(|n| *n != self.name);
                let status = status.filter(|s| *s != self.status);
                let avatar_media_id = avatar_media_id.filter(|a| *a != self.avatar_media_id);
                if name.is_none() && status.is_none() && avatar_media_id.is_none() {
                    return Ok(());
                }
                let event = UserEvent::ProfileUpdated { name, status, avatar_media_id, updated_at: at };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::UserRegistered { user_id, name, email, password_hash, avatar_media_id, registered_at } => {
                self.id = Some(user_id);
                self.name = name;
                self.email = email;
                self.password_hash = password_hash;
                self.avatar_media_id = avatar_media_id;
                self.created_at = Some(registered_at);
            }
            UserEvent::ProfileUpdated { name, status, avatar_media_id, .. } => {
                if let Some(name) = name {
                    self.name = name;
                }
                if let Some(status) = status {
                    self.status = status;
                }
                if let Some(avatar) = avatar_media_id {
                    self.avatar_media_id = avatar;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type UserTest = TestFramework<User>;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    fn user_id() -> Uuid {
        Uuid::from_u128(1)
    }

    fn registered() -> UserEvent {
        UserEvent::UserRegistered {
            user_id: user_id(),
            name: "Ada".into(),
            email: "ada@example.org".into(),
            password_hash: "$argon2id$hash".into(),
            avatar_media_id: None,
            registered_at: at(),
        }
    }

    fn register(name: &str, email: &str) -> UserCommand {
        UserCommand::Register {
            user_id: user_id(),
            name: name.into(),
            email: email.into(),
            password_hash: "$argon2id$hash".into(),
            avatar_media_id: None,
            at: at(),
        }
    }

    fn update(actor_id: Uuid, name: Option<&str>, status: Option<&str>, avatar: Option<Option<Uuid>>) -> UserCommand {
        UserCommand::UpdateProfile {
            actor_id,
            name: name.map(Into::into),
            status: status.map(Into::into),
            avatar_media_id: avatar,
            at: at(),
        }
    }

    #[test]
    fn registering_normalises_name_and_email() {
        UserTest::with(())
            .given_no_previous_events()
            .when(register("  Ada ", " ADA@Example.ORG "))
            .then_expect_events(vec![registered()]);
    }

    #[test]
    fn registering_twice_is_refused() {
        UserTest::with(())
            .given(vec![registered()])
            .when(register("Ada", "ada@example.org"))
            .then_expect_error(UserError::AlreadyRegistered);
    }

    #[test]
    fn invalid_names_and_emails_are_refused() {
        for name in ["", "   ", "a\u{0007}b", &"x".repeat(NAME_MAX_CHARS + 1)] {
            UserTest::with(())
                .given_no_previous_events()
                .when(register(name, "a@b.co"))
                .then_expect_error(UserError::InvalidName);
        }
        for email in ["", "no-at-sign", "@example.org", "a@nodot", "a@b@c.org", "a b@c.org", "a@.org", "a@b..org"] {
            UserTest::with(())
                .given_no_previous_events()
                .when(register("Ada", email))
                .then_expect_error(UserError::InvalidEmail);
        }
    }

    #[test]
    fn updating_records_only_what_changes() {
        UserTest::with(())
            .given(vec![registered()])
            .when(update(user_id(), Some("Ada"), Some("  At the lab "), None))
            .then_expect_events(vec![UserEvent::ProfileUpdated {
                name: None,
                status: Some("At the lab".into()),
                avatar_media_id: None,
                updated_at: at(),
            }]);
    }

    #[test]
    fn an_update_that_changes_nothing_records_nothing() {
        UserTest::with(())
            .given(vec![registered()])
            .when(update(user_id(), Some("Ada"), Some(""), Some(None)))
            .then_expect_events(vec![]);
    }

    #[test]
    fn setting_and_removing_the_avatar() {
        let avatar = Uuid::from_u128(9);
        let set = UserEvent::ProfileUpdated {
            name: None,
            status: None,
            avatar_media_id: Some(Some(avatar)),
            updated_at: at(),
        };
        UserTest::with(())
            .given(vec![registered()])
            .when(update(user_id(), None, None, Some(Some(avatar))))
            .then_expect_events(vec![set.clone()]);
        UserTest::with(())
            .given(vec![registered(), set])
            .when(update(user_id(), None, None, Some(None)))
            .then_expect_events(vec![UserEvent::ProfileUpdated {
                name: None,
                status: None,
                avatar_media_id: Some(None),
                updated_at: at(),
            }]);
    }

    #[test]
    fn only_the_owner_may_update() {
        UserTest::with(())
            .given(vec![registered()])
            .when(update(Uuid::from_u128(2), Some("Mallory"), None, None))
            .then_expect_error(UserError::NotOwner);
    }

    #[test]
    fn updating_an_unknown_user_is_not_found() {
        UserTest::with(())
            .given_no_previous_events()
            .when(update(user_id(), Some("Ada"), None, None))
            .then_expect_error(UserError::NotFound);
    }

    #[test]
    fn removing_the_avatar_survives_a_json_round_trip() {
        let event =
            UserEvent::ProfileUpdated { name: None, status: None, avatar_media_id: Some(None), updated_at: at() };
        let json = serde_json::to_value(&event).unwrap_or_default();
        assert_eq!(json["ProfileUpdated"]["avatar_media_id"], serde_json::Value::Null);
        assert!(json["ProfileUpdated"].get("name").is_none());
        let back: UserEvent = serde_json::from_value(json).unwrap_or_else(|_| registered());
        assert_eq!(back, event);
    }
}
