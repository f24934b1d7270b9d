//! `users`: public profiles, for `GET /users/{id}` and `GET /users?q=`.

use async_trait::async_trait;
use parley_domain::user::UserEvent;
use parley_domain::EventEnvelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{Projection, ProjectionError};

pub struct UsersProjection;

#[async_trait]
impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        "users"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &["User"]
    }

    async fn reset(&self, conn: &mut PgConnection) -> Result<(), ProjectionError> {
        sqlx::query!("TRUNCATE users").execute(conn).await?;
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection, event: &EventEnvelope) -> Result<(), ProjectionError> {
        let user_id = Uuid::parse_str(&event.aggregate_id).map_err(|_| ProjectionError::Decode {
            event_id: event.event_id.clone(),
            source: serde::de::Error::custom("aggregate id is not a UUID"),
        })?;
        let decoded: UserEvent =
            event.decode().map_err(|source| ProjectionError::Decode { event_id: event.event_id.clone(), source })?;
        match decoded {
            UserEvent::UserRegistered { name, email, avatar_media_id, registered_at, .. } => {
                sqlx::query!(
                    "INSERT INTO users (id, name, email, status, avatar_media_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, '', $4, $5, $5)",
                    user_id,
                    name,
                    email,
                    avatar_media_id,
                    registered_at
                )
                .execute(conn)
                .await?;
            }
            UserEvent::ProfileUpdated { name, status, avatar_media_id, updated_at } => {
                sqlx::query!(
                    "UPDATE users SET name = COALESCE($2, name), status = COALESCE($3, status), \
                     avatar_media_id = CASE WHEN $4 THEN $5 ELSE avatar_media_id END, updated_at = $6 WHERE id = $1",
                    user_id,
                    name,
                    status,
                    avatar_media_id.is_some(),
                    avatar_media_id.flatten(),
                    updated_at
                )
                .execute(conn)
                .await?;
            }
        }
        Ok(())
    }
}
