//! End-to-end tests: each starts real `parley-api` and `parley-projections` processes against
//! the test PostgreSQL and NATS servers (see `parley_tests::Stack`).

mod e2e {
    mod auth;
    mod bad_input;
    mod calls;
    mod chats;
    mod e2ee;
    mod e2ee_cli;
    mod fault_ledger;
    mod faults;
    mod keys;
    mod media;
    mod membership;
    mod nats_auth;
    mod notifications;
    mod ops;
    mod realtime;
    mod security;
    mod sfu;
    mod sfu_nodes;
    mod sfu_rights;
    mod spec_conformance;
    mod users;
    mod web;
}
