//! OpenTelemetry traces: `tracing` spans become OpenTelemetry spans and are exported over OTLP/HTTP
//! when an endpoint is configured (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), with no OpenTelemetry layer at all otherwise. Trace context
//! crosses process boundaries as a W3C `traceparent` string: in event metadata and NATS headers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::{ConfigError, Env};

/// The W3C trace context header and metadata key.
pub const TRACEPARENT: &str = "traceparent";

/// Set once an exporter is installed: callers skip building trace context when nobody collects it.
static EXPORTING: AtomicBool = AtomicBool::new(false);
/// `PARLEY_TRACE_SAMPLE_RATIO`, as `f64` bits.
static SAMPLE_RATIO: AtomicU64 = AtomicU64::new(0);

tokio::task_local! {
    /// Whether the spans this task creates are recorded: decided once where a trace starts (or
    /// continues), so an unsampled request costs the OpenTelemetry layer nothing at all.
    static RECORDING: bool;
}

/// Where and how much to export.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// The OTLP/HTTP endpoint; `None` turns tracing off.
    pub endpoint: Option<String>,
    /// `http/json` when asked for, else `http/protobuf` (the OTLP default).
    pub json: bool,
    /// Share of new traces recorded (0 to 1); a trace continued from another process follows the
    /// decision its parent made (only sampled traces are passed on), so a trace is whole or absent.
    pub sample_ratio: f64,
}

impl TraceSettings {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let endpoint = match env.optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")? {
            Some(endpoint) => Some(endpoint.to_owned()),
            None => env
                .optional("OTEL_EXPORTER_OTLP_ENDPOINT")?
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/'))),
        };
        let protocol = match env.optional("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")? {
            Some(protocol) => Some(protocol),
            None => env.optional("OTEL_EXPORTER_OTLP_PROTOCOL")?,
        };
        let json = match protocol {
            None | Some("http/protobuf") => false,
            Some("http/json") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "OTEL_EXPORTER_OTLP_PROTOCOL",
                    message: "expected http/protobuf or http/json".to_owned(),
                })
            }
        };
        let sample_ratio = env.parse_within("PARLEY_TRACE_SAMPLE_RATIO", 1.0, 0.0..=1.0)?;
        Ok(Self { endpoint, json, sample_ratio })
    }
}

/// The installed exporter; `shutdown` flushes what is still buffered.
pub struct Traces {
    provider: Option<SdkTracerProvider>,
}

impl Traces {
    /// Exports what is still buffered. The SDK blocks while it flushes, and the flush itself runs
    /// on the runtime, so it waits on a blocking thread.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else { return };
        match tokio::task::spawn_blocking(move || provider.shutdown()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not flush the last spans"),
            Err(error) => tracing::warn!(%error, "could not flush the last spans"),
        }
    }
}

/// `init` with the settings in `env`. When they are invalid, plain logging is installed (so the
/// caller can log the error) and the error returned.
pub fn init_from_env(service: &'static str, env: &Env) -> Result<Traces, ConfigError> {
    match TraceSettings::from_env(env) {
        Ok(settings) => init(service, &settings),
        Err(error) => {
            crate::logging::init();
            Err(error)
        }
    }
}

/// Installs the process's subscriber: JSON logs (with trace and span ids while a span is
/// recorded) filtered by `PARLEY_LOG`, and the OpenTelemetry layer when `settings` name an
/// endpoint. Call from within the Tokio runtime: the exporter sends on it. On an error, plain
/// logging is installed (so the caller can log it).
pub fn init(service: &'static str, settings: &TraceSettings) -> Result<Traces, ConfigError> {
    let Some(endpoint) = &settings.endpoint else {
        tracing_subscriber::registry().with(crate::logging::filter()).with(crate::logging::json_layer()).init();
        return Ok(Traces { provider: None });
    };
    let invalid = |error: &dyn std::fmt::Display| ConfigError::Invalid {
        name: "OTEL_EXPORTER_OTLP_ENDPOINT",
        message: error.to_string(),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OnTokio::new())
        .with_protocol(if settings.json { Protocol::HttpJson } else { Protocol::HttpBinary })
        .with_endpoint(endpoint.clone())
        .with_timeout(Duration::from_secs(10))
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(error) => {
            crate::logging::init();
            return Err(invalid(&error));
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(exporter).build())
        // Sampling is decided before spans exist (`sample`, `recorded`): what reaches the SDK is kept.
        .with_sampler(Sampler::AlwaysOn)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer(service);
    // `PARLEY_LOG` filters the logs only: spans are recorded whatever it says (a quiet log does
    // not mean no traces); of events, warnings and errors become span events.
    let recorded = recording_filter();
    // No busy/idle accounting: an instrumented future enters and leaves its span on every poll.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_tracked_inactivity(false);
    tracing_subscriber::registry()
        .with(crate::logging::json_layer().with_filter(crate::logging::filter()))
        .with(spans.with_filter(recorded))
        .init();
    SAMPLE_RATIO.store(settings.sample_ratio.to_bits(), Ordering::Relaxed);
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(Traces { provider: Some(provider) })
}

/// Whether spans are exported (else there is no context worth passing on).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// What reaches the OpenTelemetry layer: spans (info and up) and warnings created inside a
/// recording scope. Asked for every span, never cached per callsite: the answer depends on the
/// task, not on the callsite.
fn recording_filter<S>() -> impl tracing_subscriber::layer::Filter<S> {
    fn fine_enough(metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= if metadata.is_span() { tracing::Level::INFO } else { tracing::Level::WARN }
    }
    // Callsites too fine to ever record are ruled out once (and the level hint lets `debug!` and
    // `trace!` everywhere, libraries included, stop at the static level check), so only the
    // callsites that could be recorded ask each time.
    tracing_subscriber::filter::dynamic_filter_fn(|metadata, _| {
        fine_enough(metadata) && RECORDING.try_with(|recording| *recording).unwrap_or(false)
    })
    .with_max_level_hint(tracing::level_filters::LevelFilter::INFO)
    .with_callsite_filter(|metadata| {
        if fine_enough(metadata) {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    })
}

/// Whether a new trace is recorded: `PARLEY_TRACE_SAMPLE_RATIO` of them, none when not exporting.
pub fn sample() -> bool {
    exporting() && rand::random::<f64>() < f64::from_bits(SAMPLE_RATIO.load(Ordering::Relaxed))
}

/// Runs `future` with the spans it creates recorded or not. Where a trace starts, pass `sample()`;
/// where a sampled one continues (a `traceparent` came along), `true`. Outside any such scope no
/// span is recorded.
pub async fn recorded<F: Future>(recording: bool, future: F) -> F::Output {
    RECORDING.scope(recording, future).await
}

/// `span`'s context as a `traceparent` value, when it is sampled: an unsampled trace is not
/// passed on (the next process would only record nothing at the cost of carrying it).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let ids = context.span().span_context().clone();
    if !ids.is_valid() || !ids.is_sampled() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The context to pass on for work of the trace `own` done under `span`: `span`'s own when it is
/// recorded in that same trace (so the next span nests under it), else `own` unchanged.
pub fn traceparent_within(span: &tracing::Span, own: &str) -> String {
    match traceparent(span) {
        // `00-<trace id>-<span id>-<flags>`: the same trace when the first 35 characters agree.
        Some(current) if current.get(..35) == own.get(..35) => current,
        _ => own.to_owned(),
    }
}

/// The trace context an event's command stored in its metadata (a JSON string map), if any: only
/// sampled traces store one.
pub fn stored_in(metadata: &str) -> Option<String> {
    // Most events carry none: a look at the text spares parsing.
    if !metadata.contains(TRACEPARENT) {
        return None;
    }
    let mut metadata: HashMap<String, String> = serde_json::from_str(metadata).ok()?;
    metadata.remove(TRACEPARENT)
}

/// The remote span `traceparent` names, when it names one.
fn remote(traceparent: &str) -> Option<opentelemetry::Context> {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    context.span().span_context().is_valid().then_some(context)
}

/// Makes `span` a child of the remote span `traceparent` names (ignored when malformed).
pub fn continue_from(span: &tracing::Span, traceparent: &str) {
    if let Some(context) = exporting().then(|| remote(traceparent)).flatten() {
        // Fails only for a span that already started, which callers never pass.
        let _ = span.set_parent(context);
    }
}

/// Links `span` to the remote span `traceparent` names: for a batch that serves many traces.
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    if let Some(context) = exporting().then(|| remote(traceparent)).flatten() {
        span.add_link(context.span().span_context().clone());
    }
}

/// The trace and span id of the current span, for log lines.
pub(crate) fn current_ids() -> Option<(String, String)> {
    if !exporting() {
        return None;
    }
    let context = tracing::Span::current().context();
    let span = context.span();
    let ids = span.span_context();
    ids.is_valid().then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

/// The OTLP exporter's HTTP client: the SDK's batch processor exports from a thread of its own,
/// outside any Tokio runtime, so each request is spawned onto the runtime `init` ran in.
#[derive(Debug)]
struct OnTokio {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl OnTokio {
    fn new() -> Self {
        Self { client: reqwest::Client::new(), runtime: tokio::runtime::Handle::current() }
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnTokio {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
            let response = client.execute(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut answer = http::Response::new(body);
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok::<_, reqwest::Error>(answer)
        });
        Ok(sent.await??)
    }
}

#[cfg(test)]
mod tests {
    use super::TraceSettings;
    use crate::Env;

    #[test]
    fn tracing_is_off_unless_an_endpoint_is_named() {
        let off = TraceSettings::from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(off.endpoint, None);
        let on = TraceSettings::from_env(&Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("PARLEY_TRACE_SAMPLE_RATIO", "0.01"),
        ]))
        .unwrap();
        assert_eq!(on.endpoint.as_deref(), Some("http://collector:4318/v1/traces"));
        assert!(on.json);
        assert_eq!(on.sample_ratio, 0.01);
        let own = TraceSettings::from_env(&Env::from_pairs([
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4318/v1/traces"),
        ]))
        .unwrap();
        assert_eq!(own.endpoint.as_deref(), Some("http://collector:4318/v1/traces"));
        assert!(!own.json);
    }

    /// Counts the spans that pass the recording filter.
    struct Seen(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
        fn on_new_span(
            &self,
            _: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn only_spans_made_in_a_recording_scope_are_recorded_whatever_came_first() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry().with(Seen(seen.clone()).with_filter(super::recording_filter()));
        let _default = tracing::subscriber::set_default(subscriber);
        // The same callsite, first outside a recording scope (a filter cached per callsite would
        // then never record it), then in and out of scopes.
        let make = || drop(tracing::info_span!("request"));
        make();
        for recording in [false, true, false, true, true] {
            super::recorded(recording, async { make() }).await;
        }
        super::recorded(true, async { drop(tracing::debug_span!("too fine")) }).await;
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[test]
    fn bad_protocols_and_ratios_are_refused() {
        for (name, value) in [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("PARLEY_TRACE_SAMPLE_RATIO", "1.5")] {
            let error = TraceSettings::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }
}
