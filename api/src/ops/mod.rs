//! Operability: health, metrics, request ids and traces, the signing keys' public half.

pub mod framing;
pub mod metrics;
pub mod request_id;
pub mod routes;
pub mod sampler;
pub mod traces;
