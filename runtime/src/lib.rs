//! Process plumbing shared by the api, projections and SFU binaries: settings read from the
//! environment, JSON logs, OpenTelemetry traces, graceful shutdown and the container health probe. Nothing here touches the event store, so a
//! process that needs none (the SFU) does not link it.

pub mod env;
pub mod health;
pub mod logging;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod secret;
pub mod shutdown;
#[cfg(feature = "traces")]
pub mod traces;

pub use env::{ConfigError, Env};
pub use secret::Secret;
