//! One log format for every process: JSON on stderr, which the cluster's log collector (Loki)
//! parses. While a span is recorded for tracing, each line also carries `trace_id` and `span_id`,
//! so a log line leads to its trace and back.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, JsonFields, Writer};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// JSON logs on stderr, filtered by `PARLEY_LOG` (`tracing` syntax, default `info`).
pub fn init() {
    use tracing_subscriber::layer::SubscriberExt;
    tracing_subscriber::registry().with(filter()).with(json_layer()).init();
}

pub(crate) fn filter() -> EnvFilter {
    EnvFilter::try_from_env("PARLEY_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

pub(crate) fn json_layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .fmt_fields(JsonFields::new())
        .event_format(WithTraceIds(format::format().json()))
        .with_writer(std::io::stderr)
}

/// The JSON format with the current trace's ids added to the object.
struct WithTraceIds(format::Format<format::Json>);

impl<S, N> FormatEvent<S, N> for WithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let Some((trace_id, span_id)) = trace_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        // The JSON formatter writes one object and a newline: the ids go before its closing brace.
        match line.trim_end().strip_suffix('}') {
            Some(object) => writeln!(writer, r#"{object},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(feature = "traces")]
fn trace_ids() -> Option<(String, String)> {
    crate::traces::current_ids()
}

#[cfg(not(feature = "traces"))]
fn trace_ids() -> Option<(String, String)> {
    None
}
