//! `/auth/*`: thin handlers; the rules live in the `User` and `Session` aggregates.

use std::sync::Arc;

use chrono::Utc;
use parley_domain::session::{RevocationReason, SessionCommand, SessionError, SessionEvent};
use parley_domain::user::{normalize_email, normalize_name, User, UserCommand};
use parley_domain::EventMetadata;
use poem::web::Data;
use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::cookie::{self, TokenDelivery};
use super::password::{self, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS};
use super::tokens::RefreshToken;
use super::{client_ip, AccessToken, Caller, RefreshTokenBearer};
use crate::commands::{CommandError, Conflict};
use crate::error::{command_error, ApiError};
use crate::state::AppState;
use crate::text::Text;
use crate::users::views::UserView;
use crate::users::{email_taken, user_error};
use crate::ApiTags;

#[derive(Debug, Object)]
pub struct RegisterRequest {
    /// Display name, 1–64 characters.
    pub name: Text,
    /// Unique, case-insensitively.
    pub email: Text,
    /// At least 8 characters.
    pub password: Text,
    pub avatar_media_id: Option<Uuid>,
    /// Required only when the server has a CAPTCHA configured.
    pub captcha_token: Option<Text>,
}

#[derive(Debug, Object)]
pub struct LoginRequest {
    pub email: Text,
    pub password: Text,
}

#[derive(Debug, Object)]
pub struct RefreshRequest {
    pub refresh_token: Text,
}

#[derive(Debug, Object)]
pub struct LogoutRequest {
    /// Also revoke the session of this refresh token (it must be yours).
    pub refresh_token: Option<Text>,
}

#[derive(Debug, Object)]
pub struct TokenPair {
    pub access_token: String,
    /// Absent when it went into the `parley_refresh` cookie (`token_delivery=cookie`).
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: u64,
}

#[derive(Debug, Object)]
pub struct AuthSession {
    pub user: UserView,
    /// This session's device id: the id it publishes its end-to-end encryption keys under
    /// (`PUT /keys/devices/{device_id}`), and the `sender_device_id` of what it sends.
    pub device_id: Uuid,
    pub access_token: String,
    /// Absent when it went into the `parley_refresh` cookie (`token_delivery=cookie`).
    #[oai(skip_serializing_if_is_none)]
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub expires_in: u64,
}

impl AuthSession {
    fn new(user: UserView, (device_id, tokens): (Uuid, TokenPair)) -> Self {
        Self {
            user,
            device_id,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: tokens.token_type,
            expires_in: tokens.expires_in,
        }
    }
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// Account created and signed in.
    #[oai(status = 201)]
    Created(
        Json<AuthSession>,
        /// The refresh token's cookie (`token_delivery=cookie` only).
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    #[oai(status = 200)]
    Ok(
        Json<AuthSession>,
        /// The refresh token's cookie (`token_delivery=cookie` only).
        #[oai(header = "Set-Cookie")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum RefreshResponse {
    #[oai(status = 200)]
    Ok(Json<TokenPair>),
}

#[derive(ApiResponse)]
pub enum CookieRefreshResponse {
    /// A new access token; `refresh_token` is absent (the cookie carries the next one).
    #[oai(status = 200)]
    Ok(
        Json<TokenPair>,
        /// The next refresh token's cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum LogoutResponse {
    /// The session is revoked: its refresh token no longer works.
    #[oai(status = 204)]
    Revoked(
        /// Clears the refresh token's cookie.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

pub struct AuthApi;

fn session_error(error: SessionError) -> ApiError {
    match error {
        SessionError::NotOwner => ApiError::Forbidden(error.to_string()),
        SessionError::AlreadyStarted => ApiError::internal(anyhow::anyhow!("session id collision")),
        SessionError::NotFound | SessionError::Revoked | SessionError::Expired | SessionError::UnknownToken => {
            ApiError::Unauthorized("refresh token is invalid, expired or revoked".into())
        }
    }
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid(
            "invalid_password",
            format!(
                "password must be at least {MIN_PASSWORD_CHARS} characters and at most {MAX_PASSWORD_BYTES} bytes \
                 (UTF-8) long"
            ),
        ));
    }
    Ok(())
}

async fn rate_limit(state: &AppState, key: String, quota: super::rate_limit::Quota) -> Result<(), ApiError> {
    state.limiter.check(&key, quota).await.map_err(|retry_after| ApiError::RateLimited { retry_after })
}

async fn user_id_for_email(state: &AppState, email: &str) -> Result<Option<Uuid>, ApiError> {
    Ok(sqlx::query_scalar!("SELECT user_id FROM user_emails WHERE email = $1", email)
        .fetch_optional(&state.pool)
        .await?)
}

/// Starts a session for `user_id` and issues its first token pair; returns the session's id too.
async fn start_session(state: &AppState, user_id: Uuid) -> Result<(Uuid, TokenPair), ApiError> {
    let session_id = Uuid::now_v7();
    let refresh = RefreshToken::generate(session_id);
    let now = Utc::now();
    let command = SessionCommand::Start {
        session_id,
        user_id,
        refresh_token_hash: refresh.hash(),
        expires_at: now + state.config.refresh_token_ttl,
        at: now,
    };
    let metadata = EventMetadata::new(Some(user_id), now, crate::ops::request_id::current());
    state
        .sessions
        .execute(&session_id.to_string(), command, &metadata)
        .await
        .map_err(|e| command_error(e, session_error))?;
    Ok((session_id, token_pair(state, user_id, session_id, refresh)?))
}

fn token_pair(state: &AppState, user_id: Uuid, session_id: Uuid, refresh: RefreshToken) -> Result<TokenPair, ApiError> {
    let access_token = state.tokens.issue_access(user_id, session_id, Utc::now()).map_err(ApiError::internal)?;
    Ok(TokenPair {
        access_token,
        refresh_token: Some(refresh.token),
        token_type: "Bearer".into(),
        expires_in: state.tokens.access_ttl().as_secs(),
    })
}

async fn refresh(state: &AppState, req: &Request, presented: RefreshToken) -> Result<TokenPair, ApiError> {
    if let Some(ip) = client_ip(req, state.config.trusted_proxy_hops) {
        rate_limit(state, format!("refresh:ip:{ip}"), state.config.rate_limits.refresh_per_ip).await?;
    }
    rate_limit(
        state,
        format!("refresh:session:{}", presented.session_id),
        state.config.rate_limits.refresh_per_session,
    )
    .await?;
    let session_id = presented.session_id;
    let next = RefreshToken::generate(session_id);
    let now = Utc::now();
    let command = SessionCommand::Rotate {
        presented_token_hash: presented.hash(),
        new_token_hash: next.hash(),
        expires_at: now + state.config.refresh_token_ttl,
        at: now,
    };
    let metadata = EventMetadata::new(None, now, crate::ops::request_id::current());
    let committed = state
        .sessions
        .execute(&session_id.to_string(), command, &metadata)
        .await
        .map_err(|e| command_error(e, session_error))?;
    let reused = committed.events.iter().any(|e| {
        matches!(e.payload, SessionEvent::SessionRevoked { reason: RevocationReason::RefreshTokenReused, .. })
    });
    if reused {
        state.revocations.revoke(session_id);
        crate::keys::end_device(state, session_id, None).await;
        tracing::warn!(%session_id, "refresh token reused; session revoked");
        return Err(ApiError::Unauthorized("refresh token was already used; the session has been revoked".into()));
    }
    let user_id = committed.state.user_id.ok_or_else(|| ApiError::internal(anyhow::anyhow!("session without user")))?;
    token_pair(state, user_id, session_id, next)
}

/// Hands the refresh token over as asked: left in the body, or moved into a cookie (the
/// `Set-Cookie` value returned).
fn deliver(
    state: &AppState,
    req: &Request,
    delivery: Option<TokenDelivery>,
    refresh_token: &mut Option<String>,
) -> Option<String> {
    match delivery.unwrap_or_default() {
        TokenDelivery::Body => None,
        TokenDelivery::Cookie => {
            refresh_token.take().map(|token| cookie::set(req, &token, state.config.refresh_token_ttl))
        }
    }
}

/// Revokes `session_id` (the caller's own, checked by the aggregate) and removes its device.
pub(crate) async fn revoke(state: &AppState, caller: Caller, session_id: Uuid) -> Result<(), ApiError> {
    let now = Utc::now();
    let command = SessionCommand::Revoke { actor_id: caller.user_id, at: now };
    let metadata = EventMetadata::new(Some(caller.user_id), now, crate::ops::request_id::current());
    state
        .sessions
        .execute(&session_id.to_string(), command, &metadata)
        .await
        .map_err(|e| command_error(e, session_error))?;
    // This replica refuses the session's tokens at once; the others hear it from the stream.
    state.revocations.revoke(session_id);
    crate::keys::end_device(state, session_id, Some(caller.user_id)).await;
    Ok(())
}

#[OpenApi(prefix_path = "/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account
    ///
    /// Creates the account and signs it in. The email must not be in use (case-insensitively).
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        token_delivery: Query<Option<TokenDelivery>>,
        body: Json<RegisterRequest>,
    ) -> Result<RegisterResponse, ApiError> {
        let ip = client_ip(req, state.config.trusted_proxy_hops);
        if let Some(ip) = ip {
            rate_limit(&state, format!("register:ip:{ip}"), state.config.rate_limits.register_per_ip).await?;
        }
        let RegisterRequest { name, email, password, avatar_media_id, captcha_token } = body.0;
        let (name, email, password) = (name.into_inner(), email.into_inner(), password.into_inner());
        // Cheap checks first, so that invalid requests cost no Argon2 work.
        let email = normalize_email(&email).map_err(user_error)?;
        normalize_name(&name).map_err(user_error)?;
        check_password(&password)?;
        if avatar_media_id.is_some() {
            // A picture is uploaded by its owner, who has no account yet: set it afterwards.
            return Err(ApiError::invalid(
                "avatar_after_registering",
                "upload the picture after registering, then set it with PUT /users/{id}",
            ));
        }
        if let Some(captcha) = &state.captcha {
            captcha.verify(captcha_token.as_deref(), ip).await?;
        }
        if user_id_for_email(&state, &email).await?.is_some() {
            return Err(email_taken());
        }
        let password_hash = password::hash(password).await.map_err(ApiError::internal)?;
        let user_id = Uuid::now_v7();
        let now = Utc::now();
        let command =
            UserCommand::Register { user_id, name, email: email.clone(), password_hash, avatar_media_id, at: now };
        let metadata = EventMetadata::new(None, now, crate::ops::request_id::current());
        let committed = match state.users.execute(&user_id.to_string(), command, &metadata).await {
            Ok(committed) => committed,
            // The email's unique index fails the commit when a concurrent registration won.
            Err(CommandError::Conflict(Conflict::EmailTaken)) => return Err(email_taken()),
            Err(e) => return Err(command_error(e, user_error)),
        };
        let tokens = start_session(&state, user_id).await?;
        state.await_projection("users", "User", user_id, committed.version).await;
        tracing::info!(%user_id, "registered");
        let mut session = AuthSession::new(UserView::own(&committed.state), tokens);
        let set_cookie = deliver(&state, req, token_delivery.0, &mut session.refresh_token);
        Ok(RegisterResponse::Created(Json(session), set_cookie))
    }

    /// Sign in
    ///
    /// Wrong email and wrong password get the same answer.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        token_delivery: Query<Option<TokenDelivery>>,
        body: Json<LoginRequest>,
    ) -> Result<LoginResponse, ApiError> {
        let limits = &state.config.rate_limits;
        if let Some(ip) = client_ip(req, state.config.trusted_proxy_hops) {
            rate_limit(&state, format!("login:ip:{ip}"), limits.login_per_ip).await?;
        }
        let LoginRequest { email, password } = body.0;
        let password = password.into_inner();
        // Validated (at most 254 bytes) before it becomes a rate-limit key.
        let email = normalize_email(&email).map_err(user_error)?;
        rate_limit(&state, format!("login:account:{email}"), limits.login_per_account).await?;
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(ApiError::InvalidCredentials);
        }
        let user: Option<User> = match user_id_for_email(&state, &email).await? {
            Some(user_id) => {
                Some(state.users.load(&user_id.to_string()).await.map_err(|e| command_error(e, user_error))?)
            }
            None => None,
        };
        let hash = user.as_ref().map(|u| u.password_hash.clone());
        if !password::verify(password, hash).await.map_err(ApiError::internal)? {
            return Err(ApiError::InvalidCredentials);
        }
        let user = user.ok_or(ApiError::InvalidCredentials)?;
        let user_id = user.id.ok_or(ApiError::InvalidCredentials)?;
        let tokens = start_session(&state, user_id).await?;
        let mut session = AuthSession::new(UserView::own(&user), tokens);
        let set_cookie = deliver(&state, req, token_delivery.0, &mut session.refresh_token);
        Ok(LoginResponse::Ok(Json(session), set_cookie))
    }

    /// Exchange a refresh token (in the Authorization header) for a new token pair
    ///
    /// The presented refresh token is used up. Presenting an already-used one revokes its session.
    #[oai(path = "/refresh", method = "get", operation_id = "refresh_with_header")]
    async fn refresh_get(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        token: RefreshTokenBearer,
    ) -> Result<RefreshResponse, ApiError> {
        Ok(RefreshResponse::Ok(Json(refresh(&state, req, token.0).await?)))
    }

    /// Exchange a refresh token (in the body) for a new token pair
    ///
    /// The presented refresh token is used up. Presenting an already-used one revokes its session.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh_post(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        body: Json<RefreshRequest>,
    ) -> Result<RefreshResponse, ApiError> {
        let token = RefreshToken::parse(&body.refresh_token)
            .ok_or_else(|| ApiError::Unauthorized("invalid refresh token".into()))?;
        Ok(RefreshResponse::Ok(Json(refresh(&state, req, token).await?)))
    }

    /// Exchange the refresh token's cookie for a new access token (browsers)
    ///
    /// For sessions started with `token_delivery=cookie`: the `parley_refresh` cookie is used up
    /// and a new one set; the body carries no refresh token. Presenting an already-used one revokes
    /// its session. No cookie, or one that does not work: 401.
    #[oai(path = "/refresh-cookie", method = "post", operation_id = "refresh_cookie")]
    async fn refresh_cookie(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
    ) -> Result<CookieRefreshResponse, ApiError> {
        let token = cookie::presented(req).ok_or_else(|| ApiError::Unauthorized("no valid refresh cookie".into()))?;
        let mut pair = refresh(&state, req, token).await?;
        let next = pair.refresh_token.take().ok_or_else(|| ApiError::internal(anyhow::anyhow!("no refresh token")))?;
        let set_cookie = cookie::set(req, &next, state.config.refresh_token_ttl);
        Ok(CookieRefreshResponse::Ok(Json(pair), set_cookie))
    }

    /// Sign out
    ///
    /// Revokes the session of the access token (and of `refresh_token`, if given, and of the
    /// `parley_refresh` cookie's), and clears that cookie.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        auth: AccessToken,
        body: Json<Option<LogoutRequest>>,
    ) -> Result<LogoutResponse, ApiError> {
        let caller = auth.0;
        revoke(&state, caller, caller.session_id).await?;
        let in_body = body.0.and_then(|b| b.refresh_token).and_then(|t| RefreshToken::parse(&t));
        if let Some(other) = in_body.filter(|t| t.session_id != caller.session_id) {
            match revoke(&state, caller, other.session_id).await {
                Ok(()) | Err(ApiError::Unauthorized(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // The browser's cookie may be left from a session of someone else: it is cleared below
        // either way, so a refusal here does not fail the logout.
        if let Some(other) = cookie::presented(req).filter(|t| t.session_id != caller.session_id) {
            match revoke(&state, caller, other.session_id).await {
                Ok(()) | Err(ApiError::Unauthorized(_) | ApiError::Forbidden(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(LogoutResponse::Revoked(cookie::clear(req)))
    }
}
