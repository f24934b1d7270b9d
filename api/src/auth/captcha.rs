//! Optional CAPTCHA check on registration against a Turnstile-compatible `siteverify` endpoint
//! (Cloudflare Turnstile, hCaptcha and reCAPTCHA share the form-POST shape).

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::config::CaptchaConfig;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
struct SiteVerifyResponse {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

pub struct CaptchaVerifier {
    config: CaptchaConfig,
    http: reqwest::Client,
}

impl CaptchaVerifier {
    pub fn new(config: CaptchaConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(Self { config, http })
    }

    /// Passes only if the provider confirms the token.
    pub async fn verify(&self, token: Option<&str>, client_ip: Option<IpAddr>) -> Result<(), ApiError> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::invalid("captcha_required", "captcha_token is required"))?;
        let mut form = vec![("secret", self.config.secret.expose().to_owned()), ("response", token.to_owned())];
        if let Some(ip) = client_ip {
            form.push(("remoteip", ip.to_string()));
        }
        let response = self.http.post(&self.config.verify_url).form(&form).send().await.map_err(|error| {
            tracing::warn!(%error, "captcha provider unreachable");
            ApiError::Unavailable
        })?;
        let verdict: SiteVerifyResponse = response.json().await.map_err(|error| {
            tracing::warn!(%error, "captcha provider answered garbage");
            ApiError::Unavailable
        })?;
        if verdict.success {
            Ok(())
        } else {
            tracing::info!(errors = ?verdict.error_codes, "captcha rejected");
            Err(ApiError::invalid("captcha_failed", "the captcha was not solved"))
        }
    }
}
