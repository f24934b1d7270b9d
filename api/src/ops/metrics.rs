//! Prometheus metrics through OpenTelemetry: instruments are OpenTelemetry's, the exposition is
//! Prometheus text at `/metrics`.

use std::time::Instant;

use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use poem::{Endpoint, IntoResponse, Request, Response};
use prometheus::{Encoder, TextEncoder};

pub struct Metrics {
    registry: prometheus::Registry,
    // Keeps the pipeline alive.
    _provider: SdkMeterProvider,
    http_requests: Counter<u64>,
    http_duration: Histogram<f64>,
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter().with_registry(registry.clone()).build()?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter("parley-api");
        let http_requests = meter.u64_counter("http_server_requests").with_description("HTTP requests served").build();
        let http_duration = meter
            .f64_histogram("http_server_duration")
            .with_unit("s")
            .with_description("HTTP request latency")
            .with_boundaries(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
            .build();
        Ok(Self { registry, _provider: provider, http_requests, http_duration })
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "could not encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
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
