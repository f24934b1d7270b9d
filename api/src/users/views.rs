use chrono::{DateTime, Utc};
use parley_domain::user::User;
use poem_openapi::Object;
use uuid::Uuid;

use super::queries::UserRow;

/// A user's profile. `email` is present only in your own.
#[derive(Debug, Clone, Object)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    pub status: String,
    #[oai(nullable)]
    pub avatar_media_id: Option<Uuid>,
    /// Where the profile picture is: `GET` it with your access token (anyone may).
    #[oai(nullable)]
    pub avatar_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn avatar_url(media: Option<Uuid>) -> Option<String> {
    media.map(|id| format!("/media/{id}"))
}

impl UserView {
    /// The caller's own profile, from the aggregate's state (fresh after a command).
    pub fn own(user: &User) -> Self {
        Self {
            id: user.id.unwrap_or_default(),
            name: user.name.clone(),
            email: Some(user.email.clone()),
            status: user.status.clone(),
            avatar_media_id: user.avatar_media_id,
            avatar_url: avatar_url(user.avatar_media_id),
            created_at: user.created_at.unwrap_or_default(),
        }
    }

    /// A profile from the read model, as seen by `viewer`.
    pub fn seen_by(row: UserRow, viewer: Uuid) -> Self {
        let is_self = row.id == viewer;
        Self {
            id: row.id,
            name: row.name,
            email: is_self.then_some(row.email),
            status: row.status,
            avatar_media_id: row.avatar_media_id,
            avatar_url: avatar_url(row.avatar_media_id),
            created_at: row.created_at,
        }
    }
}
