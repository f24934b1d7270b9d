//! Operational gauges read every few seconds: from the database, the outbox's depth and age (events
//! the relay has not published), each projection's lag and the devices running out of one-time keys;
//! from JetStream, what each durable consumer has not been delivered yet. The alerts in
//! `k8s/components/monitoring` are built on them.

use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use opentelemetry::KeyValue;
use tokio::sync::watch;

use crate::state::AppState;

/// How often the gauges are refreshed (Prometheus scrapes every 15 s).
const EVERY: Duration = Duration::from_secs(10);
/// Clients top up their one-time keys below this many (see docs/e2ee.md); a device under it for
/// long cannot be reached by new sessions once its stock runs out.
const LOW_ONE_TIME_KEYS: i32 = 10;

pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(error) = sample(&state).await {
            tracing::debug!(%error, "could not sample operational gauges");
        }
        if let Err(error) = sample_consumers(&state).await {
            tracing::debug!(%error, "could not read the JetStream consumers");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn sample(state: &AppState) -> Result<(), sqlx::Error> {
    let metrics = &state.metrics;
    let depth = sqlx::query_scalar!(r#"SELECT count(*) AS "depth!" FROM outbox"#).fetch_one(&state.pool).await?;
    metrics.outbox_depth.record(depth, &[]);
    let oldest = sqlx::query_scalar!(
        r#"SELECT EXTRACT(EPOCH FROM now() - (e.metadata->>'occurred_at')::timestamptz)::float8 AS "age!"
           FROM outbox o JOIN events e ON e.position = o.position ORDER BY o.position LIMIT 1"#
    )
    .fetch_optional(&state.pool)
    .await?;
    metrics.relay_lag_seconds.record(oldest.unwrap_or(0.0).max(0.0), &[]);
    let lags = sqlx::query!(
        r#"SELECT c.projection,
                  GREATEST((SELECT COALESCE(max(position), 0) FROM events) - c.event_position, 0) AS "events!",
                  CASE WHEN (SELECT COALESCE(max(position), 0) FROM events) > c.event_position
                       THEN EXTRACT(EPOCH FROM now() - c.updated_at)::float8 ELSE 0 END AS "seconds!"
           FROM projection_checkpoints c"#
    )
    .fetch_all(&state.pool)
    .await?;
    for lag in lags {
        let projection = [KeyValue::new("projection", lag.projection)];
        metrics.projection_lag_events.record(lag.events, &projection);
        metrics.projection_lag_seconds.record(lag.seconds, &projection);
    }
    let low = sqlx::query_scalar!(
        r#"SELECT count(*) AS "low!" FROM devices WHERE removed_at IS NULL AND one_time_key_count < $1"#,
        LOW_ONE_TIME_KEYS
    )
    .fetch_one(&state.pool)
    .await?;
    metrics.devices_low_on_one_time_keys.record(low, &[]);
    Ok(())
}

/// Durable consumers only: the ordered ones the api and the SFU open for a while have random
/// names, and would leave a series behind each.
async fn sample_consumers(state: &AppState) -> anyhow::Result<()> {
    let jetstream = async_nats::jetstream::new(state.nats.clone());
    let stream = jetstream.get_stream(&state.config.stream.stream_name).await?;
    let mut consumers = stream.consumers();
    while let Some(info) = consumers.try_next().await? {
        if info.config.durable_name.is_none() {
            continue;
        }
        let pending = i64::try_from(info.num_pending).unwrap_or(i64::MAX);
        state.metrics.nats_consumer_pending.record(pending, &[KeyValue::new("consumer", info.name)]);
    }
    Ok(())
}
