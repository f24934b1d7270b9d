use anyhow::Result;
use parley_tests::{error_code, text, unique_email, Stack, PASSWORD};
use serde_json::json;

/// Sends raw bodies and checks every answer is a 4xx with the JSON error body.
#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_json_error_body() -> Result<()> {
    let stack = Stack::start().await?;
    let user = stack.register("Valid", &unique_email("valid")).await?;
    let token = text(&user["access_token"])?;
    let id = text(&user["user"]["id"])?;

    let profile = format!("/users/{id}");
    let raw_cases: Vec<(&str, &str, String, u16)> = vec![
        ("POST", "/auth/register", "{not json".into(), 400),
        ("POST", "/auth/register", "{\"name\": \"x\"}".into(), 400),
        ("POST", "/auth/register", json!({"name": 5, "email": "a@b.co", "password": PASSWORD}).to_string(), 400),
        (
            "POST",
            "/auth/register",
            json!({"name": "x", "email": "not-an-email", "password": PASSWORD}).to_string(),
            400,
        ),
        (
            "POST",
            "/auth/register",
            json!({"name": "x", "email": unique_email("short"), "password": "short"}).to_string(),
            400,
        ),
        (
            "POST",
            "/auth/register",
            json!({"name": "", "email": unique_email("noname"), "password": PASSWORD}).to_string(),
            400,
        ),
        ("POST", "/auth/register", "[]".into(), 400),
        ("POST", "/auth/register", "".into(), 400),
        ("POST", "/auth/login", "null".into(), 400),
        // Found by schemathesis: PostgreSQL cannot store NUL, which had made this a 500.
        ("POST", "/auth/login", json!({"email": "a\u{0}@b.co", "password": PASSWORD}).to_string(), 400),
        ("GET", "/users?q=a%00b", String::new(), 400),
        ("POST", "/auth/refresh", json!({"refresh_token": "garbage"}).to_string(), 401),
        ("POST", "/auth/refresh", json!({"refresh_token": 42}).to_string(), 400),
        ("PUT", &profile, json!({"avatar_media_id": "not-a-uuid"}).to_string(), 400),
        ("PUT", &profile, json!({"name": ["array"]}).to_string(), 400),
    ];
    for (method, path, body, expected) in raw_cases {
        let request = stack
            .http
            .request(method.parse()?, stack.url(path))
            .header("content-type", "application/json")
            .bearer_auth(&token)
            .body(body.clone());
        let (status, response) = parley_tests::read(request.send().await?).await?;
        assert_eq!(status, expected, "{method} {path} {body}: {response}");
        error_code(&response).map_err(|e| e.context(format!("{method} {path} {body}")))?;
    }

    // Wrong content type, non-UUID ids, unknown routes and methods.
    let wrong_type =
        stack.http.post(stack.url("/auth/login")).header("content-type", "text/plain").body("hi").send().await?;
    let (status, body) = parley_tests::read(wrong_type).await?;
    assert!((400..500).contains(&status), "{status}");
    error_code(&body)?;
    for path in ["/users/not-a-uuid", "/users/123", "/no/such/route"] {
        let (status, body) = stack.get(path, Some(&token)).await?;
        assert!(status == 400 || status == 404, "{path}: {status}");
        error_code(&body)?;
    }
    let (status, body) = parley_tests::read(stack.http.delete(stack.url("/auth/login")).send().await?).await?;
    assert_eq!(status, 405);
    error_code(&body)?;

    // A 10 MB body, declared and streamed (chunked), is refused before it is read.
    let big = vec![b'a'; 10 * 1024 * 1024];
    let declared = stack.http.post(stack.url("/auth/register")).body(big.clone());
    let chunks =
        futures::stream::iter(big.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let streamed = stack.http.post(stack.url("/auth/register")).body(reqwest::Body::wrap_stream(chunks));
    for request in [declared, streamed] {
        match request.header("content-type", "application/json").send().await {
            Ok(response) => {
                let (status, body) = parley_tests::read(response).await?;
                assert_eq!((status, error_code(&body)?.as_str()), (413, "payload_too_large"));
            }
            // The server answers 413 and closes without reading the rest, which the client may
            // notice as a failed write before it reads the answer.
            Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
        }
    }

    // The service is still healthy and nothing was half-written.
    let (status, _) = stack.get("/healthz", None).await?;
    assert_eq!(status, 200);
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserRegistered'")
        .fetch_one(&stack.pool)
        .await?;
    assert_eq!(accounts, 1);
    Ok(())
}
