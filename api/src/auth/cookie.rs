//! The refresh token as an `HttpOnly` cookie, for browsers: no script on the page (ours or one
//! injected) can read it. `SameSite=Strict` keeps other sites' requests from carrying it, and its
//! path keeps it off every request but `/auth/*`.

use std::time::Duration;

use poem::http::header;
use poem::Request;
use poem_openapi::Enum;

use super::tokens::RefreshToken;

pub const REFRESH_COOKIE: &str = "parley_refresh";
const COOKIE_PATH: &str = "/auth/";

/// Where a sign-in or refresh hands over the refresh token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TokenDelivery {
    /// In the JSON body (`refresh_token`): SDKs and the CLI keep it themselves.
    #[default]
    Body,
    /// In an `HttpOnly` cookie (`parley_refresh`), left out of the body: browsers.
    Cookie,
}

/// Whether the request reached us over HTTPS (directly, or as the proxy in front says): only
/// then may the cookie be `Secure`, since browsers drop `Secure` cookies set over plain HTTP.
fn over_https(req: &Request) -> bool {
    let forwarded = req.header("x-forwarded-proto").is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    forwarded || req.uri().scheme_str() == Some("https")
}

fn cookie(req: &Request, value: &str, max_age_secs: u64) -> String {
    let secure = if over_https(req) { "; Secure" } else { "" };
    format!("{REFRESH_COOKIE}={value}; Path={COOKIE_PATH}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value that hands `token` to the browser for `ttl`.
pub fn set(req: &Request, token: &str, ttl: Duration) -> String {
    cookie(req, token, ttl.as_secs())
}

/// The `Set-Cookie` value that makes the browser forget the cookie.
pub fn clear(req: &Request) -> String {
    cookie(req, "", 0)
}

/// The refresh token the request's cookie carries, if it carries a well-formed one.
pub fn presented(req: &Request) -> Option<RefreshToken> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .and_then(|(_, value)| RefreshToken::parse(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().uri(poem::http::Uri::from_static("/auth/refresh-cookie"));
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.finish()
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_only_over_https() {
        let plain = set(&request(&[]), "t", Duration::from_secs(60));
        assert_eq!(plain, "parley_refresh=t; Path=/auth/; Max-Age=60; HttpOnly; SameSite=Strict");
        let proxied = set(&request(&[("x-forwarded-proto", "https")]), "t", Duration::from_secs(60));
        assert!(proxied.ends_with("; Secure"), "{proxied}");
        assert!(clear(&request(&[])).contains("Max-Age=0"));
    }

    #[test]
    fn the_token_is_read_from_among_other_cookies_and_nonsense_is_ignored() {
        let token = RefreshToken::generate(Uuid::now_v7());
        let header = format!("theme=dark; {REFRESH_COOKIE}={}; x=y", token.token);
        let found = presented(&request(&[("cookie", &header)]));
        assert_eq!(found.map(|t| t.session_id), Some(token.session_id));
        assert!(presented(&request(&[("cookie", "parley_refresh=not-a-token")])).is_none());
        assert!(presented(&request(&[("cookie", "other=1")])).is_none());
        assert!(presented(&request(&[])).is_none());
    }
}
