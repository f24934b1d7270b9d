//! Read-your-writes: waiting (bounded) for projections to catch up with the event store.

use std::future::Future;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

/// Read-your-writes: lets a handler wait until a projection has applied an aggregate's events.
///
/// One `LISTEN` connection per process receives the projectors' progress notifications and bumps a
/// counter; waiters re-check the projection's version whenever it moves.
#[derive(Clone)]
pub struct ProjectionProgress {
    pool: PgPool,
    changes: watch::Receiver<u64>,
}

impl ProjectionProgress {
    pub async fn start(pool: PgPool) -> Result<Self, sqlx::Error> {
        let (notify, changes) = watch::channel(0u64);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(parley_eventbus::PROGRESS_CHANNEL).await?;
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(_) => {
                        notify.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    Err(error) => {
                        // PgListener reconnects on the next recv; meanwhile waiters poll.
                        tracing::warn!(%error, "projection progress listener failed");
                        notify.send_modify(|n| *n = n.wrapping_add(1));
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                if notify.is_closed() {
                    return;
                }
            }
        });
        Ok(Self { pool, changes })
    }

    /// Waits until `projection` has applied `aggregate`'s events up to `version`, or `timeout`
    /// passes. Returns whether it got there.
    pub async fn wait_for(
        &self,
        projection: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        version: i64,
        timeout: Duration,
    ) -> Result<bool, sqlx::Error> {
        self.wait_until(timeout, || async {
            let applied = sqlx::query_scalar!(
                "SELECT version FROM projection_versions \
                 WHERE projection = $1 AND aggregate_type = $2 AND aggregate_id = $3",
                projection,
                aggregate_type,
                aggregate_id
            )
            .fetch_optional(&self.pool)
            .await?;
            Ok(applied.unwrap_or(0) >= version)
        })
        .await
    }

    /// Re-runs `caught_up` whenever a projector reports progress until it holds or `timeout`
    /// passes. Returns whether it held.
    pub async fn wait_until<F, Fut>(&self, timeout: Duration, mut caught_up: F) -> Result<bool, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, sqlx::Error>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.changes.clone();
        loop {
            changes.borrow_and_update();
            if caught_up().await? {
                return Ok(true);
            }
            // The poll interval only matters if a notification is lost.
            let wake = tokio::time::Instant::now() + Duration::from_millis(250);
            match tokio::time::timeout_at(deadline.min(wake), changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => tokio::time::sleep_until(deadline.min(wake)).await,
                Err(_) if tokio::time::Instant::now() >= deadline => return Ok(false),
                Err(_) => {}
            }
        }
    }
}

/// Whether `projection` has applied every event committed for the aggregate `aggregate_type`
/// `id` (one primary-key probe: is there an event after the applied version?).
pub async fn aggregate_caught_up(
    pool: &PgPool,
    projection: &str,
    aggregate_type: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT NOT EXISTS (SELECT 1 FROM events e
             WHERE e.aggregate_type = $2 AND e.aggregate_id = $3 AND e.sequence > COALESCE(
               (SELECT version FROM projection_versions v
                WHERE v.projection = $1 AND v.aggregate_type = $2 AND v.aggregate_id = $3), 0)) AS "caught_up!""#,
        projection,
        aggregate_type,
        id.to_string()
    )
    .fetch_one(pool)
    .await
}
