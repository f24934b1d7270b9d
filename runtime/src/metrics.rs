//! Metrics: instruments are OpenTelemetry's, the exposition is Prometheus text at `/metrics`.
//! Each server builds its instruments from one `Prometheus` and renders it on request.

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, TextEncoder};

pub struct Prometheus {
    registry: prometheus::Registry,
    provider: SdkMeterProvider,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(String);

impl Prometheus {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(|e| MetricsError(e.to_string()))?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        Ok(Self { registry, provider })
    }

    /// The meter a process makes its instruments with (`name`: the process, e.g. `parley-api`).
    pub fn meter(&self, name: &'static str) -> Meter {
        self.provider.meter(name)
    }

    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(%error, "could not encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Prometheus;

    #[test]
    fn recorded_instruments_are_rendered() {
        let metrics = Prometheus::new().unwrap();
        metrics.meter("test").u64_counter("parley_things").build().add(3, &[]);
        let text = metrics.render();
        assert!(text.contains("# TYPE parley_things_total counter"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("parley_things_total") && l.ends_with(" 3")), "{text}");
    }
}
