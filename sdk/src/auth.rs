//! The access token every request carries, attached by the generated client's pre-request hook.

use std::fmt;
use std::sync::{Arc, RwLock};

use reqwest::header::{HeaderValue, AUTHORIZATION};

/// The bearer token a [`crate::Client`] sends, shared by its clones. Replace it after
/// `POST /auth/refresh` with [`crate::Client::set_access_token`]; requests made from then on
/// carry the new one. Without a token, requests go out without `Authorization`.
#[derive(Clone, Default)]
pub struct Auth {
    token: Arc<RwLock<Option<HeaderValue>>>,
}

/// An access token that cannot travel in an HTTP header (it holds control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidToken;

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the access token is not a valid HTTP header value")
    }
}

impl std::error::Error for InvalidToken {}

impl Auth {
    /// No token: only the routes that need none (register, login, refresh) will succeed.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sends `Authorization: Bearer <access_token>`.
    pub fn bearer(access_token: &str) -> Result<Self, InvalidToken> {
        let auth = Self::default();
        auth.set(Some(access_token))?;
        Ok(auth)
    }

    /// Replaces the token (`None` removes it).
    pub fn set(&self, access_token: Option<&str>) -> Result<(), InvalidToken> {
        let value = match access_token {
            Some(token) => {
                let mut value = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| InvalidToken)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        *self.token.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
        Ok(())
    }

    /// Whether a token is set.
    pub fn is_set(&self) -> bool {
        self.token.read().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some()
    }

    /// The generated client's pre-request hook (see `parley-sdk-gen`).
    pub(crate) async fn attach(&self, request: &mut reqwest::Request) -> Result<(), std::convert::Infallible> {
        let value = self.token.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(value) = value {
            request.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(())
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth").field("token", &if self.is_set() { "<set>" } else { "<none>" }).finish()
    }
}
