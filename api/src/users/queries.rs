//! Reads of the `users` read model (built by `parley-projections`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub status: String,
    pub avatar_media_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// `lower(name)`: the sort key of searches.
    pub sort_key: String,
}

/// Where a search page ends: the last row's sort key and id. Opaque to clients.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchCursor {
    pub sort_key: String,
    pub id: Uuid,
}

impl SearchCursor {
    pub fn encode(&self) -> String {
        let json = serde_json::json!([self.sort_key, self.id]);
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    pub fn decode(cursor: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let (sort_key, id): (String, Uuid) = serde_json::from_slice(&bytes).ok()?;
        Some(Self { sort_key, id })
    }
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as!(
        UserRow,
        r#"SELECT id, name, email, status, avatar_media_id, created_at, lower(name) AS "sort_key!" FROM users
           WHERE id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
}

/// Escapes `LIKE` wildcards so that the text matches literally.
fn like_pattern(text: &str) -> String {
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// Users whose name or status contains `text` (case-insensitive), by name; one row more than
/// `limit` is fetched to know whether another page exists.
pub async fn search(
    pool: &PgPool,
    text: &str,
    after: Option<&SearchCursor>,
    limit: u32,
) -> Result<(Vec<UserRow>, Option<SearchCursor>), sqlx::Error> {
    let mut rows = sqlx::query_as!(
        UserRow,
        r#"SELECT id, name, email, status, avatar_media_id, created_at, lower(name) AS "sort_key!" FROM users
           WHERE (lower(name) LIKE $1 OR lower(status) LIKE $1) AND ($2::text IS NULL OR (lower(name), id) > ($2, $3))
           ORDER BY lower(name), id LIMIT $4"#,
        like_pattern(text),
        after.map(|c| c.sort_key.clone()),
        after.map(|c| c.id).unwrap_or_default(),
        i64::from(limit) + 1
    )
    .fetch_all(pool)
    .await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|r| SearchCursor { sort_key: r.sort_key.clone(), id: r.id })
    } else {
        None
    };
    Ok((rows, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = SearchCursor { sort_key: "ada lovelace".into(), id: Uuid::from_u128(3) };
        assert_eq!(SearchCursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(SearchCursor::decode("not base64!"), None);
        assert_eq!(SearchCursor::decode(&URL_SAFE_NO_PAD.encode("{}")), None);
    }

    #[test]
    fn like_wildcards_match_literally() {
        assert_eq!(like_pattern("50%_Off\\"), "%50\\%\\_off\\\\%");
    }
}
