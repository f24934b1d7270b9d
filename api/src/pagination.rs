//! Page sizes and opaque cursors shared by list endpoints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ApiError;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// A page size within bounds: default 50, at most 200.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid("invalid_limit", format!("limit must be between 1 and {MAX_PAGE}"))),
    }
}

/// The cursor of a list ordered by `(time, id)` descending: where the previous page ended.
pub fn encode_time_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!([at, id]).to_string())
}

pub fn decode_time_cursor(cursor: Option<&str>) -> Result<Option<(DateTime<Utc>, Uuid)>, ApiError> {
    let Some(cursor) = cursor else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| ApiError::invalid("invalid_cursor", "cursor is not valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_cursors_round_trip_and_garbage_is_refused() {
        let (at, id) = (Utc::now(), Uuid::from_u128(7));
        assert_eq!(decode_time_cursor(Some(&encode_time_cursor(at, id))).ok(), Some(Some((at, id))));
        assert!(decode_time_cursor(Some("!!")).is_err());
        assert!(matches!(decode_time_cursor(None), Ok(None)));
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(201)).is_err());
        assert_eq!(page_limit(None).ok(), Some(50));
    }
}
