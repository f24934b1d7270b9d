//! The write side: commands on event-sourced aggregates.
//!
//! `bus` runs a command against an aggregate (cached in memory, one command per aggregate at a
//! time), `store` loads aggregates from and group-commits events to the `postgres-es` event
//! store, and `progress` lets a handler or query wait for a projection to catch up.

mod bus;
mod lookups;
mod progress;
mod store;

pub use bus::{retry_concurrent, CommandBus, CommandError, Committed};
pub use lookups::{ClientMessageRow, WriteLookups};
pub use progress::{aggregate_caught_up, ProjectionProgress};
pub use store::{CommitError, Conflict, EventStore, MessageKey};
