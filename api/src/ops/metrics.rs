//! Prometheus metrics through OpenTelemetry: instruments are OpenTelemetry's, the exposition is
//! Prometheus text at `/metrics`.

use std::time::Instant;

use opentelemetry::metrics::{Counter, Gauge, Histogram, UpDownCounter};
use opentelemetry::KeyValue;
use parley_runtime::metrics::Prometheus;
use poem::{Endpoint, IntoResponse, Request, Response};

pub struct Metrics {
    prometheus: Prometheus,
    http_requests: Counter<u64>,
    http_duration: Histogram<f64>,
    websocket_connections: UpDownCounter<i64>,
    websocket_frames: Counter<u64>,
    media_bytes: Counter<u64>,
    /// Events this replica committed, by aggregate type (counted by the event store).
    pub(crate) events_appended: Counter<u64>,
    /// Sampled from the database by `ops::sampler` (every replica reports the same values).
    pub(crate) outbox_depth: Gauge<i64>,
    pub(crate) relay_lag_seconds: Gauge<f64>,
    pub(crate) projection_lag_events: Gauge<i64>,
    pub(crate) projection_lag_seconds: Gauge<f64>,
    pub(crate) devices_low_on_one_time_keys: Gauge<i64>,
    pub(crate) nats_consumer_pending: Gauge<i64>,
}

/// Counts one open WebSocket for as long as it lives.
pub struct OpenSocket {
    connections: UpDownCounter<i64>,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.connections.add(-1, &[]);
    }
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let prometheus = Prometheus::new()?;
        let meter = prometheus.meter("parley-api");
        let http_requests = meter.u64_counter("http_server_requests").with_description("HTTP requests served").build();
        let http_duration = meter
            .f64_histogram("http_server_duration")
            .with_unit("s")
            .with_description("HTTP request latency")
            .with_boundaries(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
            .build();
        Ok(Self {
            websocket_connections: meter
                .i64_up_down_counter("parley_websocket_connections")
                .with_description("WebSockets open on this replica")
                .build(),
            websocket_frames: meter
                .u64_counter("parley_websocket_frames")
                .with_description("WebSocket text frames, sent to clients and received from them")
                .build(),
            media_bytes: meter
                .u64_counter("parley_media_bytes")
                .with_description("media bytes uploaded (in) and downloaded (out)")
                .build(),
            events_appended: meter
                .u64_counter("parley_events_appended")
                .with_description("events committed to the event store by this replica")
                .build(),
            outbox_depth: meter
                .i64_gauge("parley_outbox_depth")
                .with_description("committed events not yet published to NATS")
                .build(),
            // Exported as `parley_relay_lag_seconds`.
            relay_lag_seconds: meter
                .f64_gauge("parley_relay_lag")
                .with_unit("s")
                .with_description("age of the oldest committed event not yet published to NATS (0 when none waits)")
                .build(),
            projection_lag_events: meter
                .i64_gauge("parley_projection_lag_events")
                .with_description("events committed after the newest one a projection applied")
                .build(),
            // Exported as `parley_projection_lag_seconds` (the exporter appends the unit).
            projection_lag_seconds: meter
                .f64_gauge("parley_projection_lag")
                .with_unit("s")
                .with_description("how long a projection that is behind has not moved (0 when caught up)")
                .build(),
            devices_low_on_one_time_keys: meter
                .i64_gauge("parley_devices_low_on_one_time_keys")
                .with_description("live devices with fewer one-time keys than clients keep in stock")
                .build(),
            nats_consumer_pending: meter
                .i64_gauge("parley_nats_consumer_pending")
                .with_description(
                    "events a durable consumer of the event stream (a projection group) has not been delivered yet",
                )
                .build(),
            prometheus,
            http_requests,
            http_duration,
        })
    }

    /// Counts a WebSocket as open until the returned guard is dropped.
    pub fn socket_opened(&self) -> OpenSocket {
        self.websocket_connections.add(1, &[]);
        OpenSocket { connections: self.websocket_connections.clone() }
    }

    /// Counts text frames sent to a client (`sent`) or received from one.
    pub fn websocket_frame(&self, sent: bool) {
        self.websocket_frames.add(1, &[KeyValue::new("direction", if sent { "sent" } else { "received" })]);
    }

    /// Counts media bytes uploaded (`inbound`) or downloaded.
    pub fn media_bytes(&self, inbound: bool, bytes: usize) {
        self.media_bytes.add(bytes as u64, &[KeyValue::new("direction", if inbound { "in" } else { "out" })]);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.prometheus.render()
    }

    fn record(&self, method: &'static str, operation: &str, status: u16, seconds: f64) {
        let attributes = [
            KeyValue::new("method", method),
            KeyValue::new("operation", operation.to_owned()),
            KeyValue::new("status", i64::from(status)),
        ];
        self.http_requests.add(1, &attributes);
        self.http_duration.record(seconds, &attributes);
    }
}

/// The method as a label: the standard ones by name, anything a client made up as `other`, so
/// requests cannot create series.
fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Records count and latency per operation (the OpenAPI operation id, never the raw path, so
/// ids in URLs do not explode the label set).
pub async fn observe<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let method = method_label(req.method());
    let state = req.data::<std::sync::Arc<crate::state::AppState>>().cloned();
    let response = match next.call(req).await {
        Ok(r) => r.into_response(),
        Err(error) => crate::error::render_any_error(error),
    };
    if let Some(state) = state {
        let operation = response
            .data::<poem_openapi::OperationId>()
            .map(|id| id.0.to_owned())
            .unwrap_or_else(|| "other".to_owned());
        state.metrics.record(method, &operation, response.status().as_u16(), started.elapsed().as_secs_f64());
    }
    Ok(response)
}
