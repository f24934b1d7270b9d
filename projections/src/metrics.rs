//! The projector's own metrics, at `/metrics` of its HTTP port (with `/healthz`).

use std::time::Duration;

use opentelemetry::metrics::{Counter, Histogram};
use opentelemetry::KeyValue;
use parley_runtime::metrics::{MetricsError, Prometheus};

pub struct ProjectionMetrics {
    prometheus: Prometheus,
    events_applied: Counter<u64>,
    batch_duration: Histogram<f64>,
}

impl ProjectionMetrics {
    pub fn new() -> Result<Self, MetricsError> {
        let prometheus = Prometheus::new()?;
        let meter = prometheus.meter("parley-projections");
        Ok(Self {
            events_applied: meter
                .u64_counter("parley_projection_events_applied")
                .with_description("events a projection applied (duplicates skipped)")
                .build(),
            batch_duration: meter
                .f64_histogram("parley_projection_batch_duration")
                .with_unit("s")
                .with_description("time to apply one delivery batch to a projection group, commit included")
                .with_boundaries(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
                .build(),
            prometheus,
        })
    }

    pub fn batch_applied(&self, consumer: &str, took: Duration, applied: &[(&'static str, usize)]) {
        self.batch_duration.record(took.as_secs_f64(), &[KeyValue::new("consumer", consumer.to_owned())]);
        for (projection, count) in applied {
            self.events_applied.add(*count as u64, &[KeyValue::new("projection", *projection)]);
        }
    }

    pub fn render(&self) -> String {
        self.prometheus.render()
    }
}
