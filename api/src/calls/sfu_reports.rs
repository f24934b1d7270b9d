//! The SFU's participant reports (media connected, participant gone), taken from their JetStream
//! stream by one durable consumer that all api replicas share, and recorded on the `Call`.
//! A report is acknowledged once its command committed (or was refused for good), so an api
//! that dies mid-way leaves it to another replica.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use parley_domain::call::SfuReport;
use parley_domain::EventMetadata;
use tokio::sync::watch;

use crate::commands::CommandError;
use crate::state::AppState;

const CONSUMER: &str = "parley-api-sfu-reports";

pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        tokio::select! {
            result = consume(&state) => {
                if let Err(error) = result {
                    tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "SFU reports consumer failed");
                }
            }
            _ = shutdown.changed() => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn consume(state: &AppState) -> anyhow::Result<()> {
    let jetstream = jetstream::new(state.nats.clone());
    let settings = &state.config.stream;
    let stream = parley_eventbus::stream::ensure_sfu_reports_stream(&jetstream, settings).await?;
    let durable = format!("{}-{CONSUMER}", settings.stream_name);
    let config = consumer::pull::Config {
        durable_name: Some(durable.clone()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(10),
        ..Default::default()
    };
    let consumer: consumer::PullConsumer = stream.get_or_create_consumer(&durable, config).await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let report: SfuReport = match serde_json::from_slice(&message.payload) {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(%error, "dropping an undecodable SFU report");
                message.ack_with(AckKind::Term).await.map_err(|e| anyhow::anyhow!(e))?;
                continue;
            }
        };
        let metadata = EventMetadata::new(Some(report.user_id), report.at, crate::ops::request_id::current());
        match state.calls.execute_retrying(&report.call_id.to_string(), report.command(), &metadata).await {
            Ok(_) | Err(CommandError::Refused(_)) => {
                message.ack().await.map_err(|e| anyhow::anyhow!(e))?;
            }
            Err(error) => {
                tracing::warn!(%error, call_id = %report.call_id, "could not record an SFU report; it will be redelivered");
                message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await.map_err(|e| anyhow::anyhow!(e))?;
            }
        }
    }
    Ok(())
}
