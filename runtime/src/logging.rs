//! One log format for every process: JSON on stderr, which the cluster's log collector parses.

/// JSON logs on stderr, filtered by `PARLEY_LOG` (`tracing` syntax, default `info`).
pub fn init() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PARLEY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}
