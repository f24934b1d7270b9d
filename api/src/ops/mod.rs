//! Operability: health, metrics, the signing keys' public half.

pub mod metrics;
pub mod routes;
pub mod sampler;
