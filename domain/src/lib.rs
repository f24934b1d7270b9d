//! Parley's write-side domain: aggregates, their commands and the events they record.
//!
//! Events are the durable contract of the system: they are stored forever in the event store and
//! read by every projector. Add fields compatibly (`#[serde(default)]`), bump `event_version` when the
//! meaning changes, and upcast old versions instead of rewriting them.
//!
//! Nothing here performs I/O: password hashing, clocks and ids are supplied by the caller.

pub mod call;
pub mod chat;
pub mod device;
pub mod envelope;
pub mod inbox;
pub mod media;
pub mod metadata;
pub mod sealed;
pub mod serde_helpers;
pub mod session;
pub mod to_device;
pub mod user;

pub use envelope::EventEnvelope;
pub use metadata::EventMetadata;
