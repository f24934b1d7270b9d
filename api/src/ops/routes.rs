use std::sync::Arc;

use poem::web::Data;
use poem::Request;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use crate::ApiTags;

#[derive(Debug, Object)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    pub postgres: bool,
    pub nats: bool,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// Migrations ran; Postgres and NATS are reachable.
    #[oai(status = 200)]
    Healthy(Json<Health>),
    /// A dependency is unreachable.
    #[oai(status = 503)]
    Unhealthy(Json<Health>),
}

#[derive(ApiResponse)]
pub enum MetricsResponse {
    /// Prometheus text exposition format.
    #[oai(status = 200, content_type = "text/plain; version=0.0.4")]
    Ok(PlainText<String>),
}

pub struct OpsApi;

#[OpenApi(tag = "ApiTags::Operations")]
impl OpsApi {
    /// Liveness and readiness
    #[oai(path = "/healthz", method = "get", operation_id = "health")]
    async fn health(&self, state: Data<&Arc<AppState>>) -> HealthResponse {
        // Migrations run before the server starts listening, so reaching here implies them.
        let postgres = sqlx::query!("SELECT 1 AS alive").fetch_one(&state.pool).await.is_ok();
        let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
        let health = Health { status: if postgres && nats { "ok" } else { "degraded" }.into(), postgres, nats };
        if postgres && nats {
            HealthResponse::Healthy(Json(health))
        } else {
            HealthResponse::Unhealthy(Json(health))
        }
    }

    /// Prometheus metrics
    ///
    /// Open unless the server was started with `PARLEY_METRICS_TOKEN`: then only a request with
    /// `Authorization: Bearer <that token>` is answered, anything else gets 401 (the api's port
    /// is the public one, behind the ingress).
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&Arc<AppState>>, request: &Request) -> Result<MetricsResponse, ApiError> {
        if let Some(token) = &state.config.metrics_token {
            let presented = request.header("authorization").and_then(|value| value.strip_prefix("Bearer "));
            // Digests, so the comparison takes as long whatever the presented token shares.
            let digest = |text: &str| Sha256::digest(text.as_bytes());
            if presented.map(digest) != Some(digest(token.expose())) {
                return Err(ApiError::Unauthorized("metrics want the operator's bearer token".into()));
            }
        }
        Ok(MetricsResponse::Ok(PlainText(state.metrics.render())))
    }

    /// The public keys that verify access tokens (JWKS)
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "jwks")]
    async fn jwks(&self, state: Data<&Arc<AppState>>) -> Json<serde_json::Value> {
        Json(state.tokens.jwks())
    }
}
