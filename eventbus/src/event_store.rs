//! Reading committed events back out of the event store, in commit (position) order.

use futures::{Stream, StreamExt};
use parley_domain::EventEnvelope;
use serde_json::value::RawValue;
use sqlx::PgConnection;

use crate::BusError;

/// A row of `events` as the queries below select it (`payload` and `metadata` as text).
struct EventRow {
    position: i64,
    aggregate_type: String,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: String,
    metadata: String,
}

impl EventRow {
    fn envelope(self) -> Result<EventEnvelope, sqlx::Error> {
        Ok(EventEnvelope {
            event_id: EventEnvelope::id_for(&self.aggregate_type, &self.aggregate_id, self.sequence),
            position: self.position,
            aggregate_type: self.aggregate_type,
            aggregate_id: self.aggregate_id,
            sequence: self.sequence,
            event_type: self.event_type,
            event_version: self.event_version,
            payload: raw_json(self.payload)?,
            metadata: raw_json(self.metadata)?,
        })
    }
}

/// A stored `json` column's text, unparsed (PostgreSQL already checked it is JSON).
fn raw_json(text: String) -> Result<Box<RawValue>, sqlx::Error> {
    RawValue::from_string(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The events of one aggregate with `after < sequence <= up_to`, in order.
pub async fn aggregate_events(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    after: i64,
    up_to: i64,
) -> Result<Vec<EventEnvelope>, BusError> {
    let rows = sqlx::query_as!(
        EventRow,
        r#"SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                  payload::text AS "payload!", metadata::text AS "metadata!"
           FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 AND sequence <= $4
           ORDER BY sequence"#,
        aggregate_type,
        aggregate_id,
        after,
        up_to
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(EventRow::envelope).collect::<Result<_, _>>()?)
}

/// Every event of the given aggregate types in commit order, streamed (never all in memory).
pub fn all_events<'c>(
    conn: &'c mut PgConnection,
    aggregate_types: &'c [String],
) -> impl Stream<Item = Result<EventEnvelope, BusError>> + 'c {
    sqlx::query_as!(
        EventRow,
        r#"SELECT position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                  payload::text AS "payload!", metadata::text AS "metadata!"
           FROM events WHERE aggregate_type = ANY($1) ORDER BY position"#,
        aggregate_types
    )
    .fetch(conn)
    .map(|row| Ok(row?.envelope()?))
}

/// In the caller's transaction (which holds the relay's lock): deletes the oldest `limit` outbox
/// rows and returns their events in commit order.
pub async fn take_outbox(conn: &mut PgConnection, limit: i64) -> Result<Vec<EventEnvelope>, BusError> {
    // `= ANY(ARRAY(...))` runs the oldest-rows scan once. As `IN (SELECT ...)` the planner
    // sometimes chose a semi-join that re-ran the scan for every row it deleted, each time
    // wading through the dead index entries at the queue's head: 2 ms a call under load,
    // about half of PostgreSQL's CPU during the messaging benchmark.
    let rows = sqlx::query_as!(
        EventRow,
        r#"WITH o AS (DELETE FROM outbox WHERE position = ANY(ARRAY(
             SELECT position FROM outbox ORDER BY position LIMIT $1)) RETURNING position)
           SELECT e.position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version,
                  e.payload::text AS "payload!", e.metadata::text AS "metadata!"
           FROM o JOIN events e ON e.position = o.position ORDER BY o.position"#,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(EventRow::envelope).collect::<Result<_, _>>()?)
}
