use anyhow::Result;
use parley_tests::{error_code, text, unique_email, Stack, StackOptions, PASSWORD};
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

/// Writes `request` to the api over a bare connection and reads until it answers and closes,
/// or `wait` passes: (status line, whole answer).
async fn raw_exchange(stack: &Stack, request: &str, wait: std::time::Duration) -> Result<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = stack.base_url.trim_start_matches("http://");
    let mut connection = tokio::net::TcpStream::connect(address).await?;
    connection.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            let n = connection.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            answer.extend_from_slice(&buf[..n]);
            // One answer is all we wait for: headers and a complete body.
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()));
                if length.and_then(|l| l.parse::<usize>().ok()).is_some_and(|l| body.len() >= l) {
                    return Ok(());
                }
            }
        }
    })
    .await;
    anyhow::ensure!(read.is_ok(), "no answer within {wait:?}; got {:?}", String::from_utf8_lossy(&answer));
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    Ok((status, answer))
}

/// The JSON error code of a raw answer.
fn raw_error_code(answer: &str) -> Result<String> {
    let body = answer.split_once("\r\n\r\n").map(|(_, body)| body).unwrap_or_default();
    error_code(&serde_json::from_str(body).map_err(|e| anyhow::anyhow!("not JSON ({e}): {answer:?}"))?)
}

#[tokio::test]
async fn bodies_that_stall_or_declare_no_length_end_in_a_json_400() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().env("PARLEY_BODY_STALL_TIMEOUT_SECS", "2")).await?;
    let user = stack.register("Valid", &unique_email("valid")).await?;
    let token = text(&user["access_token"])?;
    let wait = std::time::Duration::from_secs(10);

    // Shorter than its Content-Length: answered once the body stalls, not held open.
    let started = std::time::Instant::now();
    let short_json = "POST /auth/login HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\n\
                      Content-Length: 100\r\n\r\n{\"email\": ";
    let (status, answer) = raw_exchange(&stack, short_json, wait).await?;
    assert!(status.contains(" 400 "), "{answer}");
    assert_eq!(raw_error_code(&answer)?, "body_incomplete");
    assert!(started.elapsed() < std::time::Duration::from_secs(6), "took {:?}", started.elapsed());

    let short_upload = format!(
        "POST /media HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer {token}\r\nContent-Type: image/png\r\n\
         Content-Length: 5000\r\n\r\nonly a few bytes"
    );
    let (status, answer) = raw_exchange(&stack, &short_upload, wait).await?;
    assert!(status.contains(" 400 "), "{answer}");
    assert_eq!(raw_error_code(&answer)?, "upload_interrupted");

    // An empty Content-Length on an upload.
    let empty_length = format!(
        "POST /media HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer {token}\r\nContent-Type: image/png\r\n\
         Content-Length: \r\n\r\n"
    );
    let (status, answer) = raw_exchange(&stack, &empty_length, wait).await?;
    assert!(status.contains(" 400 "), "{answer}");
    raw_error_code(&answer)?;
    let (status, _) = stack.get("/healthz", None).await?;
    assert_eq!(status, 200);
    Ok(())
}
