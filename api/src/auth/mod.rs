//! Accounts and sessions: register, login, refresh, logout; the bearer scheme every other feature
//! uses to know who is calling.

pub mod captcha;
pub mod cookie;
pub mod password;
pub mod rate_limit;
pub mod revocation;
pub mod routes;
pub mod shared_limits;
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
    if state.revocations.is_revoked(claims.sid) {
        return Err(ApiError::Unauthorized("this session has been signed out".into()).into());
    }
    crate::ops::traces::record_caller(claims.sub);
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

/// The client's address. Behind `trusted_proxy_hops` proxies, each appending the address it was
/// reached from to `X-Forwarded-For`, only the last that many entries were written by them: the
/// client's is the `trusted_proxy_hops`-th from the right. Entries left of it are whatever the
/// client sent, so they are never read. Without proxies (or with fewer entries than proxies, i.e.
/// a request that did not come through them) it is the peer address.
pub fn client_ip(req: &Request, trusted_proxy_hops: usize) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
    if trusted_proxy_hops == 0 {
        return peer;
    }
    let headers = req.headers().get_all("x-forwarded-for");
    let entries: Vec<&str> =
        headers.iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).map(str::trim).collect();
    match entries.len().checked_sub(trusted_proxy_hops).and_then(|index| entries.get(index)) {
        Some(entry) => entry.parse().ok().or(peer),
        None => peer,
    }
}
