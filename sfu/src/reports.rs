//! Tells the api who connected and who left, over JetStream (the api records it on the call).
//! Reports wait in memory while NATS is away and are published in order once it is back.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream;
use parley_domain::call::SfuReport;
use parley_eventbus::StreamSettings;
use tokio::sync::mpsc;

pub(crate) async fn run(
    nats: async_nats::Client,
    settings: StreamSettings,
    mut reports: mpsc::UnboundedReceiver<SfuReport>,
) {
    let jetstream = jetstream::new(nats);
    let mut queue: VecDeque<SfuReport> = VecDeque::new();
    let mut stream_ready = false;
    loop {
        if queue.is_empty() {
            match reports.recv().await {
                Some(report) => queue.push_back(report),
                None => return,
            }
        }
        while let Ok(report) = reports.try_recv() {
            queue.push_back(report);
        }
        if !stream_ready {
            match parley_eventbus::stream::ensure_sfu_reports_stream(&jetstream, &settings).await {
                Ok(_) => stream_ready = true,
                Err(error) => {
                    tracing::warn!(%error, "SFU reports stream unavailable; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        while let Some(report) = queue.front() {
            match publish(&jetstream, &settings, report).await {
                Ok(()) => {
                    queue.pop_front();
                }
                Err(error) => {
                    tracing::warn!(%error, pending = queue.len(), "could not publish an SFU report; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

async fn publish(jetstream: &jetstream::Context, settings: &StreamSettings, report: &SfuReport) -> anyhow::Result<()> {
    let subject = settings.sfu_reports_subject(report.call_id);
    let id = format!("{}:{}:{}:{}", report.call_id, report.user_id, report.connected, report.at.timestamp_micros());
    let message =
        jetstream::message::PublishMessage::build().payload(serde_json::to_vec(report)?.into()).message_id(id);
    jetstream.send_publish(subject, message).await?.await?;
    Ok(())
}
