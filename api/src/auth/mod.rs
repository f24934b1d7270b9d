//! Accounts and sessions: register, login, refresh, logout; the bearer scheme every other feature
//! uses to know who is calling.

pub mod captcha;
pub mod password;
pub mod rate_limit;
pub mod routes;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;

use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;
use tokens::RefreshToken;

/// The authenticated user making a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

/// `Authorization: Bearer <access token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "JWT", checker = "check_access_token")]
pub struct AccessToken(pub Caller);

async fn check_access_token(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = state_of(req)?;
    let claims = state
        .tokens
        .verify_access(&bearer.token)
        .ok_or_else(|| ApiError::Unauthorized("invalid or expired access token".into()))?;
    Ok(Caller { user_id: claims.sub, session_id: claims.sid })
}

/// `Authorization: Bearer <refresh token>` (for `GET /auth/refresh`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_refresh_token_shape")]
pub struct RefreshTokenBearer(pub RefreshToken);

async fn check_refresh_token_shape(_req: &Request, bearer: Bearer) -> poem::Result<RefreshToken> {
    Ok(RefreshToken::parse(&bearer.token).ok_or_else(|| ApiError::Unauthorized("invalid refresh token".into()))?)
}

pub(crate) fn state_of(req: &Request) -> Result<&Arc<AppState>, ApiError> {
    req.data::<Arc<AppState>>().ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))
}

/// The client's address: the peer, or the first `X-Forwarded-For` hop when configured to trust it.
pub fn client_ip(req: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = req.header("x-forwarded-for").and_then(|v| v.split(',').next()).map(str::trim);
        if let Some(ip) = forwarded.and_then(|v| v.parse().ok()) {
            return Some(ip);
        }
    }
    req.remote_addr().as_socket_addr().map(|addr| addr.ip())
}
