//! `/notifications`: created by the feed projection (a message while you were offline, being
//! added to a group); listing reads them, marking read and deleting are `Inbox` commands.

pub mod routes;
