//! Removes media bytes from storage: for uploads their owner deleted, for media of messages
//! deleted for everyone, and for uploads never attached within `PARLEY_MEDIA_UNATTACHED_TTL_SECS`.
//! Each removal is recorded (`MediaObjectRemoved`) after the delete succeeded; a failed delete is
//! retried on the next pass. Every api replica may run it: the commands are idempotent. It also
//! removes resumable-upload sessions untouched for `PARLEY_MEDIA_UNATTACHED_TTL_SECS`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parley_domain::media::{DeleteReason, MediaCommand};
use parley_domain::EventMetadata;
use tokio::sync::watch;
use uuid::Uuid;

use super::queries;
use crate::state::AppState;

const PASS_EVERY: Duration = Duration::from_millis(500);
const BATCH: i64 = 100;

pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    // Abandoned upload sessions are looked for a tenth of their lifetime apart (listing a bucket
    // costs), between once a second and every ten minutes.
    let ttl = state.config.media_unattached_ttl;
    let sessions_every = (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let mut sessions_checked = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PASS_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(error) = pass(&state).await {
            tracing::warn!(%error, "media reaper pass failed; retrying");
        }
        if sessions_checked.elapsed() >= sessions_every {
            sessions_checked = tokio::time::Instant::now();
            let cutoff = Utc::now() - chrono::Duration::from_std(ttl).unwrap_or_default();
            match state.storage.delete_older_than("uploads", cutoff).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed abandoned upload sessions"),
                Err(error) => tracing::warn!(%error, "could not remove abandoned upload sessions"),
            }
        }
    }
}

async fn command(state: &AppState, id: Uuid, command: MediaCommand) -> anyhow::Result<()> {
    let metadata = EventMetadata::new(None, Utc::now(), crate::ops::request_id::current());
    state.media.execute_retrying(&id.to_string(), command, &metadata).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

async fn pass(state: &AppState) -> anyhow::Result<()> {
    let now = Utc::now();
    for id in queries::of_deleted_messages(&state.pool, BATCH).await? {
        command(state, id, MediaCommand::Delete { actor_id: None, reason: DeleteReason::MessageDeleted, at: now })
            .await?;
    }
    let cutoff = now - chrono::Duration::from_std(state.config.media_unattached_ttl)?;
    for id in queries::unattached_before(&state.pool, cutoff, BATCH).await? {
        command(state, id, MediaCommand::Delete { actor_id: None, reason: DeleteReason::Unattached, at: now }).await?;
    }
    for (id, key) in queries::to_remove(&state.pool, BATCH).await? {
        state.storage.delete(&key).await?;
        command(state, id, MediaCommand::ObjectRemoved { at: Utc::now() }).await?;
    }
    Ok(())
}
