//! Ringing timeout: calls nobody answered in time become missed; answered calls whose
//! participants all vanished before their media reached the SFU end after the same time (else
//! they would hold the chat's one live call for good). Every api replica sweeps; the aggregate
//! makes a second expiry of the same call a no-op.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parley_domain::call::CallCommand;
use parley_domain::EventMetadata;
use tokio::sync::watch;

use super::queries;
use crate::state::AppState;

const SWEEP_EVERY: Duration = Duration::from_millis(500);
const SWEEP_BATCH: i64 = 200;

pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(error) = sweep(&state).await {
            tracing::warn!(%error, "ringing-timeout sweep failed");
        }
    }
}

async fn sweep(state: &AppState) -> anyhow::Result<()> {
    let now = Utc::now();
    let cutoff = now - chrono::Duration::from_std(state.config.call_ring_timeout)?;
    let mut due = queries::ringing_since(&state.pool, cutoff, SWEEP_BATCH).await?;
    due.extend(queries::abandoned_since(&state.pool, cutoff, SWEEP_BATCH).await?);
    for call_id in due {
        let command = CallCommand::Expire { cutoff, at: now };
        let metadata = EventMetadata::new(None, now, crate::ops::request_id::current());
        if let Err(error) = state.calls.execute_retrying(&call_id.to_string(), command, &metadata).await {
            tracing::warn!(%call_id, %error, "could not expire a ringing call");
        }
    }
    Ok(())
}
