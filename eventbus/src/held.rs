//! A pool connection kept from one use to the next by a task that runs statements back to back
//! (the committer, the relay, a projector). A sqlx pool tests a connection with a round trip
//! before it hands it out and again when it gets it back, so taking one per statement tripled
//! the round trips of a one-statement commit, and the first of them sat in the commit's own
//! latency.

use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

pub struct HeldConnection {
    pool: PgPool,
    /// The connection, and when it was taken from the pool.
    held: Option<(PoolConnection<Postgres>, Instant)>,
}

impl HeldConnection {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, held: None }
    }

    /// The held connection; one is taken from the pool (tested there) when none is held. One
    /// held for longer than the pool's `max_lifetime` (30 minutes by default) goes back first,
    /// and the pool closes it: a revoked password or role, which only bars new sessions, takes
    /// effect within that time, as for the pool's own connections.
    pub async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let max_lifetime = self.pool.options().get_max_lifetime();
        if let (Some((_, taken)), Some(max)) = (&self.held, max_lifetime) {
            if taken.elapsed() >= max {
                // Given back before taking another: the pool may have no other connection.
                self.held = None;
            }
        }
        let held = match self.held.take() {
            Some(held) => held,
            None => (self.pool.acquire().await?, Instant::now()),
        };
        Ok(&mut *self.held.insert(held).0)
    }

    /// Hands the connection back to the pool, which tests it and closes it if it is broken: for
    /// after a failure that may have left it broken or mid-transaction (a dropped transaction
    /// has queued its `ROLLBACK`, which that test flushes).
    pub fn release(&mut self) {
        self.held = None;
    }

    /// Whether `error` may have come from the connection rather than from the database refusing
    /// a statement, so that it is worth retrying on a fresh one: anything but a database error,
    /// and the database's own "operator intervention" (class 57: a terminated session, a
    /// shutting-down server, which sends it before it closes the socket) and "connection
    /// exception" (class 08) errors.
    pub fn is_connection_error(error: &sqlx::Error) -> bool {
        match error {
            sqlx::Error::Database(refused) => {
                refused.code().is_some_and(|code| code.starts_with("57") || code.starts_with("08"))
            }
            _ => true,
        }
    }
}
