//! The JetStream stream that carries committed events.

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use parley_runtime::{ConfigError, Env, Secret};

use crate::BusError;

/// Where events go on NATS. Configurable so that several deployments (or test runs) can share
/// one NATS server without seeing each other's events.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// JetStream stream name, e.g. `PARLEY_EVENTS`.
    pub stream_name: String,
    /// Subject prefix: events go to `<prefix>.<AggregateType>.<aggregate id>`.
    pub subject_prefix: String,
    /// How long the stream keeps events: the longest a projector may be down and still catch up
    /// from the stream (it can always rebuild from the event store).
    pub max_age: Duration,
    pub replicas: usize,
}

impl StreamSettings {
    /// `PARLEY_NATS_STREAM`, `PARLEY_NATS_SUBJECT_PREFIX`, `PARLEY_NATS_STREAM_MAX_AGE_HOURS`
    /// (1 hour to 10 years), `PARLEY_NATS_STREAM_REPLICAS` (1 to 5, what JetStream allows).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let max_age_hours: u64 = env.parse_within("PARLEY_NATS_STREAM_MAX_AGE_HOURS", 168, 1..=87_600)?;
        Ok(Self {
            stream_name: env.string("PARLEY_NATS_STREAM", "PARLEY_EVENTS")?,
            subject_prefix: env.string("PARLEY_NATS_SUBJECT_PREFIX", "parley.events")?,
            max_age: Duration::from_secs(max_age_hours * 3600),
            replicas: env.parse_within("PARLEY_NATS_STREAM_REPLICAS", 1, 1..=5)?,
        })
    }

    pub fn subject_for_type(&self, aggregate_type: &str) -> String {
        format!("{}.{aggregate_type}.*", self.subject_prefix)
    }

    /// The stream of the SFU's participant reports (joins and leaves), beside the events stream.
    pub fn sfu_reports_stream(&self) -> String {
        format!("{}_SFU_REPORTS", self.stream_name)
    }

    /// `<prefix>-sfu.<call id>`: outside the events stream's `<prefix>.>`.
    pub fn sfu_reports_subject(&self, call_id: impl std::fmt::Display) -> String {
        format!("{}-sfu.{call_id}", self.subject_prefix)
    }
}

/// Creates the SFU reports stream if needed (the SFU and the api both call this). Reports are
/// work: each is consumed once, by whichever api replica takes it.
pub async fn ensure_sfu_reports_stream(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, BusError> {
    js.get_or_create_stream(stream::Config {
        name: settings.sfu_reports_stream(),
        subjects: vec![format!("{}-sfu.>", settings.subject_prefix)],
        retention: stream::RetentionPolicy::WorkQueue,
        max_age: settings.max_age,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(BusError::nats)
}

/// Creates the stream if it does not exist yet (both the relay and projectors call this, so
/// either may start first).
pub async fn ensure_stream(js: &jetstream::Context, settings: &StreamSettings) -> Result<stream::Stream, BusError> {
    js.get_or_create_stream(stream::Config {
        name: settings.stream_name.clone(),
        subjects: vec![format!("{}.>", settings.subject_prefix)],
        max_age: settings.max_age,
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        // Relay re-publishes after a crash are dropped by JetStream within this window; later
        // ones are dropped by the projectors' per-aggregate versions.
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(BusError::nats)
}

/// The events of `aggregate_types` committed since `since`, then every new one, on an ordered
/// ephemeral consumer (no checkpoint, recreated by the client after a NATS outage): for processes
/// that only keep a short memory of recent events, such as revoked sessions.
pub async fn recent_events(
    js: &jetstream::Context,
    settings: &StreamSettings,
    aggregate_types: &[&str],
    since: chrono::DateTime<chrono::Utc>,
) -> Result<jetstream::consumer::pull::Ordered, BusError> {
    let stream = ensure_stream(js, settings).await?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subjects: aggregate_types.iter().map(|t| settings.subject_for_type(t)).collect(),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartTime { start_time: since },
            ..Default::default()
        })
        .await
        .map_err(BusError::nats)?;
    consumer.messages().await.map_err(BusError::nats)
}

/// How a process reaches NATS: `NATS_URL`, as the user `NATS_USER` with `NATS_PASSWORD` when the
/// server wants one (each service has its own, allowed only the subjects it uses: see
/// `k8s/base/nats/authorization.conf`).
#[derive(Debug, Clone)]
pub struct NatsConnection {
    pub url: String,
    pub credentials: Option<(String, Secret)>,
}

impl NatsConnection {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let credentials = match env.optional("NATS_USER")? {
            Some(user) => Some((user.to_owned(), Secret::new(env.required("NATS_PASSWORD", "with NATS_USER")?))),
            None => None,
        };
        Ok(Self { url: env.string("NATS_URL", "nats://127.0.0.1:54222")?, credentials })
    }

    /// Connects as `name`, retrying in the background until the server is reachable. Replies
    /// (JetStream acknowledgements and deliveries) come to `_INBOX_<name>.*`, so a server can let
    /// each service read only its own.
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, BusError> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some((user, password)) = &self.credentials {
            options = async_nats::ConnectOptions::with_user_and_password(user.clone(), password.expose().to_owned());
        }
        options
            .name(name)
            .custom_inbox_prefix(format!("_INBOX_{name}"))
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(&self.url)
            .await
            .map_err(BusError::nats)
    }
}

/// Core-NATS subjects for realtime delivery (not captured by the event stream): per user,
/// `<prefix>.user.<user id>`. `PARLEY_NATS_REALTIME_PREFIX`, default `parley.rt`.
pub fn realtime_prefix_from_env(env: &Env) -> Result<String, ConfigError> {
    env.string("PARLEY_NATS_REALTIME_PREFIX", "parley.rt")
}

/// The subject a user's realtime messages travel on.
pub fn realtime_subject(prefix: &str, user_id: impl std::fmt::Display) -> String {
    format!("{prefix}.user.{user_id}")
}

/// Publishes a realtime message on core NATS, with `traceparent` (a sampled trace the frame
/// belongs to) as a header, so the api's delivery of the frame joins that trace.
pub async fn publish_realtime(
    nats: &async_nats::Client,
    subject: String,
    payload: bytes::Bytes,
    traceparent: Option<&str>,
) -> Result<(), async_nats::PublishError> {
    match traceparent {
        Some(traceparent) => {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(parley_runtime::traces::TRACEPARENT, traceparent);
            nats.publish_with_headers(subject, headers, payload).await
        }
        None => nats.publish(subject, payload).await,
    }
}

/// The subject that makes every api replica's sockets read their feeds once (`<prefix>.resync`):
/// published when frames may have been committed without being announced.
pub fn resync_subject(prefix: &str) -> String {
    format!("{prefix}.resync")
}

/// The subject a device's own realtime messages travel on (to-device messages, key stock):
/// `<prefix>.device.<device id>`, heard by the sockets of that device's session only.
pub fn device_subject(prefix: &str, device_id: impl std::fmt::Display) -> String {
    format!("{prefix}.device.{device_id}")
}

/// How long an unacknowledged to-device message is kept: `PARLEY_TO_DEVICE_TTL_SECS` (default
/// 7 days, 60 s to a year). Read by the api (which stops serving older ones) and the projector
/// (which deletes them).
pub fn to_device_ttl_from_env(env: &Env) -> Result<Duration, ConfigError> {
    let secs = env.parse_within("PARLEY_TO_DEVICE_TTL_SECS", 7 * 24 * 3600, 60..=365 * 24 * 3600)?;
    Ok(Duration::from_secs(secs))
}

/// A frame that is not part of the user's feed (no cursor).
pub fn ephemeral_frame_text(kind: &str, data_json: &str) -> String {
    format!(r#"{{"type":{},"data":{data_json}}}"#, serde_json::Value::from(kind))
}

/// A stored feed frame as clients receive it: `data_json` is already JSON.
pub fn feed_frame_text(kind: &str, data_json: &str, cursor: i64) -> String {
    format!(r#"{{"type":{},"data":{data_json},"cursor":"{cursor}"}}"#, serde_json::Value::from(kind))
}

/// What travels on a user's realtime subject.
#[derive(Debug, PartialEq, Eq)]
pub enum RealtimeMessage<'a> {
    /// A stored feed frame (`text` is the JSON sent to the client as is). `prev_cursor` is the
    /// user's frame before it, so a socket that last sent `prev_cursor` can pass this one on
    /// without a query; any other socket reads its feed from the database instead.
    Frame { prev_cursor: i64, cursor: i64, text: &'a str },
    /// A frame that is never stored (typing indicators).
    Ephemeral(&'a str),
}

impl RealtimeMessage<'_> {
    /// `F <prev> <cursor>\n<frame>` or `E\n<frame>`: no JSON parse between projector and socket.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            RealtimeMessage::Frame { prev_cursor, cursor, text } => format!("F {prev_cursor} {cursor}\n{text}"),
            RealtimeMessage::Ephemeral(text) => format!("E\n{text}"),
        }
        .into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<RealtimeMessage<'_>> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (header, body) = text.split_once('\n')?;
        let mut fields = header.split(' ');
        match fields.next()? {
            "F" => {
                let prev_cursor = fields.next()?.parse().ok()?;
                let cursor = fields.next()?.parse().ok()?;
                Some(RealtimeMessage::Frame { prev_cursor, cursor, text: body })
            }
            "E" => Some(RealtimeMessage::Ephemeral(body)),
            _ => None,
        }
    }
}

/// How long the SFU directory keeps a node that stopped writing (dead to the api long before).
const SFU_NODES_MAX_AGE: Duration = Duration::from_secs(60);

/// The SFU directory's KV bucket `name` (each node's load under its node id; see
/// `parley_domain::call::SfuNode`), created if it does not exist yet. The SFU nodes write it; the
/// api follows it.
pub async fn sfu_nodes_bucket(js: &jetstream::Context, name: &str) -> Result<jetstream::kv::Store, BusError> {
    if let Ok(store) = js.get_key_value(name).await {
        return Ok(store);
    }
    js.create_key_value(jetstream::kv::Config {
        bucket: name.to_owned(),
        description: "Parley's SFU nodes: where each is reached and its load".into(),
        history: 1,
        max_age: SFU_NODES_MAX_AGE,
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .map_err(BusError::nats)
}

#[cfg(test)]
mod tests {
    use super::RealtimeMessage;

    #[test]
    fn realtime_messages_round_trip() {
        let frame = RealtimeMessage::Frame { prev_cursor: 7, cursor: 12, text: "{\"type\":\"x\"}" };
        assert_eq!(RealtimeMessage::decode(&frame.encode()), Some(frame));
        let typing = RealtimeMessage::Ephemeral("{\"type\":\"typing\"}");
        assert_eq!(RealtimeMessage::decode(&typing.encode()), Some(typing));
        assert_eq!(RealtimeMessage::decode(b"F 1\n{}"), None);
        assert_eq!(RealtimeMessage::decode(b"{\"wake\":true}"), None);
    }
}
