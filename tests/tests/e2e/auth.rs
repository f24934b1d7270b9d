use std::time::Duration;

use anyhow::Result;
use futures::future::join_all;
use parley_tests::{error_code, text, unique_email, Stack, StackOptions, PASSWORD};
use serde_json::json;

#[tokio::test]
async fn register_login_refresh_reuse_and_logout() -> Result<()> {
    let stack = Stack::start().await?;
    let email = unique_email("ada");
    let registered = stack.register("Ada", &email).await?;
    assert_eq!(registered["user"]["name"], "Ada");
    assert_eq!(registered["user"]["email"], email);
    assert_eq!(registered["user"]["status"], "");
    let user_id = text(&registered["user"]["id"])?;

    // The access token works.
    let access = &*text(&registered["access_token"])?;
    let (status, me) = stack.get(&format!("/users/{user_id}"), Some(access)).await?;
    assert_eq!((status, me["email"].as_str()), (200, Some(email.as_str())));

    // Log in (email in another case) gets a second, independent session.
    let (status, login) =
        stack.post("/auth/login", None, &json!({"email": email.to_uppercase(), "password": PASSWORD})).await?;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["user"]["id"].as_str(), Some(user_id.as_str()));
    let first = text(&login["refresh_token"])?;

    // Refresh rotates: a new refresh token, and a working access token.
    let (status, rotated) = stack.post("/auth/refresh", None, &json!({"refresh_token": first})).await?;
    assert_eq!(status, 200, "{rotated}");
    let second = text(&rotated["refresh_token"])?;
    assert_ne!(second, first);
    let (status, _) = stack.get(&format!("/users/{user_id}"), rotated["access_token"].as_str()).await?;
    assert_eq!(status, 200);

    // GET /auth/refresh with the token in the Authorization header does the same.
    let response = stack.http.get(stack.url("/auth/refresh")).bearer_auth(&second).send().await?;
    let (status, third) = parley_tests::read(response).await?;
    assert_eq!(status, 200, "{third}");
    let third = text(&third["refresh_token"])?;

    // Reusing an old token is refused and revokes the session: the newest token dies too.
    let (status, body) = stack.post("/auth/refresh", None, &json!({"refresh_token": first})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (401, "unauthorized"));
    let (status, _) = stack.post("/auth/refresh", None, &json!({"refresh_token": third})).await?;
    assert_eq!(status, 401);

    // The registration's session is unaffected; logout revokes it.
    let refresh = &*text(&registered["refresh_token"])?;
    let response = stack.http.post(stack.url("/auth/logout")).bearer_auth(access).send().await?;
    assert_eq!(response.status().as_u16(), 204);
    let (status, _) = stack.post("/auth/refresh", None, &json!({"refresh_token": refresh})).await?;
    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test]
async fn logout_can_also_revoke_another_of_your_sessions() -> Result<()> {
    let stack = Stack::start().await?;
    let email = unique_email("multi");
    let first = stack.register("Multi", &email).await?;
    let (_, second) = stack.post("/auth/login", None, &json!({"email": email, "password": PASSWORD})).await?;
    let (status, _) = stack
        .post("/auth/logout", first["access_token"].as_str(), &json!({"refresh_token": second["refresh_token"]}))
        .await?;
    assert_eq!(status, 204);
    for token in [&first["refresh_token"], &second["refresh_token"]] {
        let (status, _) = stack.post("/auth/refresh", None, &json!({"refresh_token": token})).await?;
        assert_eq!(status, 401);
    }
    Ok(())
}

#[tokio::test]
async fn duplicate_email_is_a_conflict_whatever_the_case() -> Result<()> {
    let stack = Stack::start().await?;
    let email = unique_email("dup");
    stack.register("First", &email).await?;
    for variant in [email.clone(), email.to_uppercase(), format!("  {email} ")] {
        let (status, body) = stack
            .post("/auth/register", None, &json!({"name": "Second", "email": variant, "password": PASSWORD}))
            .await?;
        assert_eq!((status, error_code(&body)?.as_str()), (409, "email_taken"), "{variant}");
    }
    Ok(())
}

#[tokio::test]
async fn of_twenty_concurrent_registrations_exactly_one_succeeds() -> Result<()> {
    let stack = Stack::start().await?;
    let email = unique_email("race");
    let attempts = (0..20).map(|i| {
        let body = json!({"name": format!("Racer {i}"), "email": if i % 2 == 0 { email.clone() } else { email.to_uppercase() }, "password": PASSWORD});
        let stack = &stack;
        async move { stack.post("/auth/register", None, &body).await }
    });
    let mut statuses: Vec<u16> =
        join_all(attempts).await.into_iter().map(|r| r.map(|(s, _)| s)).collect::<Result<_>>()?;
    statuses.sort();
    assert_eq!(statuses[0], 201);
    assert!(statuses[1..].iter().all(|s| *s == 409), "{statuses:?}");
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserRegistered'")
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(accounts, 1);
    Ok(())
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() -> Result<()> {
    let stack = Stack::start().await?;
    let email = unique_email("known");
    stack.register("Known", &email).await?;
    let (s1, wrong_password) =
        stack.post("/auth/login", None, &json!({"email": email, "password": "not the password"})).await?;
    let (s2, unknown_email) =
        stack.post("/auth/login", None, &json!({"email": unique_email("nobody"), "password": PASSWORD})).await?;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong_password, unknown_email);
    assert_eq!(error_code(&wrong_password)?, "invalid_credentials");
    Ok(())
}

#[tokio::test]
async fn expired_tampered_and_missing_access_tokens_are_401() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().env("PARLEY_ACCESS_TOKEN_TTL_SECS", "1")).await?;
    let user = stack.register("Short", &unique_email("short")).await?;
    let path = format!("/users/{}", text(&user["user"]["id"])?);
    let token = text(&user["access_token"])?;
    assert_eq!(user["expires_in"], 1);

    // Change one character of the signature.
    let mut tampered = token.clone();
    let last = tampered.pop().map(|c| if c == 'A' { 'B' } else { 'A' }).unwrap_or('A');
    tampered.push(last);
    for bad in [tampered.as_str(), "not.a.jwt", ""] {
        let (status, body) = stack.get(&path, Some(bad)).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (401, "unauthorized"), "{bad}");
    }
    let (status, body) = stack.get(&path, None).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (401, "unauthorized"));

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = stack.get(&path, Some(&token)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (401, "unauthorized"));
    // A refresh brings a fresh, working one.
    let (status, fresh) = stack.post("/auth/refresh", None, &json!({"refresh_token": user["refresh_token"]})).await?;
    assert_eq!(status, 200);
    let (status, _) = stack.get(&path, fresh["access_token"].as_str()).await?;
    assert_eq!(status, 200);
    Ok(())
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() -> Result<()> {
    let stack = Stack::start_with(
        StackOptions::default()
            .env("PARLEY_RATE_REGISTER_PER_IP", "2/3600")
            .env("PARLEY_RATE_LOGIN_PER_ACCOUNT", "3/60")
            .env("PARLEY_RATE_REFRESH_PER_SESSION", "2/60"),
    )
    .await?;
    let email = unique_email("limited");
    let user = stack.register("Limited", &email).await?;
    stack.register("Other", &unique_email("other")).await?;
    let response = stack
        .http
        .post(stack.url("/auth/register"))
        .json(&json!({"name": "Third", "email": unique_email("third"), "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 =
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(0);
    assert!(retry_after > 0 && retry_after <= 3600, "{retry_after}");
    let (_, body) = parley_tests::read(response).await?;
    assert_eq!(error_code(&body)?, "rate_limited");

    // Per account: the fourth login for the same email within a minute, even with the right password.
    for attempt in 0..4 {
        let (status, _) = stack.post("/auth/login", None, &json!({"email": email, "password": PASSWORD})).await?;
        assert_eq!(status, if attempt < 3 { 200 } else { 429 }, "login attempt {attempt}");
    }
    // Per session: refreshes.
    let mut token = user["refresh_token"].clone();
    for attempt in 0..3 {
        let (status, body) = stack.post("/auth/refresh", None, &json!({"refresh_token": token})).await?;
        assert_eq!(status, if attempt < 2 { 200 } else { 429 }, "refresh attempt {attempt}");
        token = body["refresh_token"].clone();
    }
    Ok(())
}

/// A stand-in for the CAPTCHA provider's siteverify endpoint (a third-party service, not part
/// of our stack): accepts the token "solved" for the secret "s3cret".
async fn fake_siteverify() -> Result<String> {
    use poem::web::Form;
    use poem::{handler, post, Route, Server};
    #[handler]
    fn verify(Form(form): Form<std::collections::HashMap<String, String>>) -> poem::web::Json<serde_json::Value> {
        let ok = form.get("secret").map(String::as_str) == Some("s3cret")
            && form.get("response").map(String::as_str) == Some("solved");
        poem::web::Json(json!({"success": ok, "error-codes": if ok { vec![] } else { vec!["invalid-input-response"] }}))
    }
    let port = parley_tests::free_port()?;
    let listener = poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"));
    tokio::spawn(Server::new(listener).run(Route::new().at("/siteverify", post(verify))));
    Ok(format!("http://127.0.0.1:{port}/siteverify"))
}

#[tokio::test]
async fn captcha_is_checked_on_registration_when_configured() -> Result<()> {
    let verify_url = fake_siteverify().await?;
    let stack = Stack::start_with(
        StackOptions::default().env("PARLEY_CAPTCHA_SECRET", "s3cret").env("PARLEY_CAPTCHA_VERIFY_URL", &verify_url),
    )
    .await?;
    let attempt = |token: Option<&str>| json!({"name": "Bot?", "email": unique_email("captcha"), "password": PASSWORD, "captcha_token": token});
    let (status, body) = stack.post("/auth/register", None, &attempt(None)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "captcha_required"));
    let (status, body) = stack.post("/auth/register", None, &attempt(Some("guessed"))).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "captcha_failed"));
    let (status, body) = stack.post("/auth/register", None, &attempt(Some("solved"))).await?;
    assert_eq!(status, 201, "{body}");
    Ok(())
}

/// A response's `Set-Cookie` for the refresh cookie, and the token it carries.
fn refresh_cookie(response: &reqwest::Response) -> Option<(String, String)> {
    let header = response.headers().get("set-cookie")?.to_str().ok()?.to_owned();
    let token = header.strip_prefix("parley_refresh=")?.split(';').next()?.to_owned();
    Some((header, token))
}

async fn post_with_cookie(stack: &Stack, path: &str, token: &str) -> Result<reqwest::Response> {
    Ok(stack.http.post(stack.url(path)).header("cookie", format!("parley_refresh={token}")).send().await?)
}

#[tokio::test]
async fn browsers_get_the_refresh_token_as_an_http_only_cookie_that_rotates_and_logout_clears() -> Result<()> {
    let stack = Stack::start().await?;
    let email = unique_email("bea");
    stack.register("Bea", &email).await?;

    // Asked for the cookie: the token is in an HttpOnly, SameSite=Strict cookie for /auth/ only,
    // and not in the body any script reads.
    let login = stack
        .http
        .post(stack.url("/auth/login?token_delivery=cookie"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    assert_eq!(login.status().as_u16(), 200);
    let (header, first) = refresh_cookie(&login).ok_or_else(|| anyhow::anyhow!("no refresh cookie"))?;
    for attribute in ["; Path=/auth/", "; HttpOnly", "; SameSite=Strict", "; Max-Age="] {
        assert!(header.contains(attribute), "{attribute} missing: {header}");
    }
    let body: serde_json::Value = login.json().await?;
    assert!(body.get("refresh_token").is_none() && body["access_token"].is_string(), "{body}");

    // The cookie rotates like a refresh token: a new cookie, a working access token.
    let rotated = post_with_cookie(&stack, "/auth/refresh-cookie", &first).await?;
    assert_eq!(rotated.status().as_u16(), 200);
    let (_, second) = refresh_cookie(&rotated).ok_or_else(|| anyhow::anyhow!("no rotated cookie"))?;
    assert_ne!(first, second);
    let pair: serde_json::Value = rotated.json().await?;
    assert!(pair.get("refresh_token").is_none(), "{pair}");
    let access = text(&pair["access_token"])?;
    let (status, _) = stack.get("/chats", Some(&access)).await?;
    assert_eq!(status, 200);

    // No cookie, a malformed one: 401 with a JSON error.
    let none = stack.http.post(stack.url("/auth/refresh-cookie")).send().await?;
    assert_eq!(none.status().as_u16(), 401);
    let body: serde_json::Value = none.json().await?;
    assert_eq!(error_code(&body)?, "unauthorized");
    assert_eq!(post_with_cookie(&stack, "/auth/refresh-cookie", "junk").await?.status().as_u16(), 401);

    // Logout clears the cookie, and the cookie's session is over.
    let logout = stack
        .http
        .post(stack.url("/auth/logout"))
        .bearer_auth(&access)
        .header("cookie", format!("parley_refresh={second}"))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(logout.status().as_u16(), 204);
    let (cleared, value) = refresh_cookie(&logout).ok_or_else(|| anyhow::anyhow!("logout left the cookie"))?;
    assert!(value.is_empty() && cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(post_with_cookie(&stack, "/auth/refresh-cookie", &second).await?.status().as_u16(), 401);

    // A reused cookie revokes its session, as a reused refresh token does.
    let again = stack
        .http
        .post(stack.url("/auth/login?token_delivery=cookie"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await?;
    let (_, third) = refresh_cookie(&again).ok_or_else(|| anyhow::anyhow!("no refresh cookie"))?;
    let next = post_with_cookie(&stack, "/auth/refresh-cookie", &third).await?;
    let (_, fourth) = refresh_cookie(&next).ok_or_else(|| anyhow::anyhow!("no rotated cookie"))?;
    assert_eq!(post_with_cookie(&stack, "/auth/refresh-cookie", &third).await?.status().as_u16(), 401);
    assert_eq!(post_with_cookie(&stack, "/auth/refresh-cookie", &fourth).await?.status().as_u16(), 401);

    // Without the query, SDKs and the CLI get the token in the body as before, and no cookie.
    let plain =
        stack.http.post(stack.url("/auth/login")).json(&json!({"email": email, "password": PASSWORD})).send().await?;
    assert!(plain.headers().get("set-cookie").is_none());
    let body: serde_json::Value = plain.json().await?;
    assert!(body["refresh_token"].is_string(), "{body}");
    let (status, body) =
        stack.post("/auth/login?token_delivery=jar", None, &json!({"email": email, "password": PASSWORD})).await?;
    assert_eq!(status, 400, "{body}");
    Ok(())
}

/// An Ed25519 signing key as `(private PKCS#8 PEM, public SPKI PEM)`.
fn ed25519_pems(seed: u8) -> Result<(String, String)> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| anyhow::anyhow!("{e}"))?.to_string();
    let public = key.verifying_key().to_public_key_pem(LineEnding::LF).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((private, public))
}

#[tokio::test]
async fn a_rotated_signing_key_keeps_earlier_tokens_valid_while_it_is_accepted() -> Result<()> {
    let (old_private, old_public) = ed25519_pems(11)?;
    let (new_private, _) = ed25519_pems(12)?;
    let mut stack = Stack::start_with(StackOptions::default().env("PARLEY_JWT_PRIVATE_KEY", &old_private)).await?;
    let registered = stack.register("ada", &parley_tests::unique_email("ada")).await?;
    let old_token = parley_tests::text(&registered["access_token"])?;

    // Step 2 of the runbook: a replica signing with the new key still takes the old one's tokens,
    // and its JWKS names both keys.
    stack.set_env("PARLEY_JWT_PRIVATE_KEY", Some(&new_private));
    stack.set_env("PARLEY_JWT_ACCEPTED_PUBLIC_KEYS", Some(&old_public));
    let rotated = stack.start_extra_api().await?;
    let chats = stack.http.get(format!("{rotated}/chats")).bearer_auth(&old_token).send().await?;
    assert_eq!(chats.status().as_u16(), 200);
    let jwks: serde_json::Value =
        stack.http.get(format!("{rotated}/.well-known/jwks.json")).send().await?.json().await?;
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2), "{jwks}");

    // Step 3: once the old key is no longer accepted, its tokens are refused.
    stack.set_env("PARLEY_JWT_ACCEPTED_PUBLIC_KEYS", None);
    let forgotten = stack.start_extra_api().await?;
    let chats = stack.http.get(format!("{forgotten}/chats")).bearer_auth(&old_token).send().await?;
    assert_eq!(chats.status().as_u16(), 401);

    // An accepted key grants nothing a logout took away: signed out, the old key's token is
    // refused by the replica that still accepts that key.
    let logout = stack
        .http
        .post(format!("{rotated}/auth/logout"))
        .bearer_auth(&old_token)
        .json(&json!({"refresh_token": text(&registered["refresh_token"])?}))
        .send()
        .await?;
    assert_eq!(logout.status().as_u16(), 204);
    stack
        .eventually(Duration::from_secs(5), "the logged-out token is refused", || async {
            let chats = stack.http.get(format!("{rotated}/chats")).bearer_auth(&old_token).send().await?;
            Ok(chats.status().as_u16() == 401)
        })
        .await?;
    Ok(())
}
