//! A pool connection kept from one use to the next by a task that runs statements back to back
//! (the committer, the relay, a projector). A sqlx pool tests a connection with a round trip
//! before it hands it out and again when it gets it back, so taking one per statement tripled
//! the round trips of a one-statement commit, and the first of them sat in the commit's own
//! latency.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

pub struct HeldConnection {
    pool: PgPool,
    held: Option<PoolConnection<Postgres>>,
}

impl HeldConnection {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, held: None }
    }

    /// The held connection; one is taken from the pool (tested there) when none is held.
    pub async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let connection = match self.held.take() {
            Some(connection) => connection,
            None => self.pool.acquire().await?,
        };
        Ok(&mut **self.held.insert(connection))
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
