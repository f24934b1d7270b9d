use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use parley_tests::{call_everyone, direct, member, run_peer, Stack};
use serde_json::{json, Value};

#[tokio::test]
async fn health_metrics_spec_docs_and_keys_are_served() -> Result<()> {
    let stack = Stack::start().await?;
    let (status, health) = stack.get("/healthz", None).await?;
    assert_eq!(status, 200);
    assert_eq!((health["postgres"].as_bool(), health["nats"].as_bool()), (Some(true), Some(true)));

    let (status, spec) = stack.get("/openapi.json", None).await?;
    assert_eq!(status, 200);
    assert!(spec["paths"]["/auth/register"]["post"].is_object());

    let docs = stack.http.get(stack.url("/docs")).send().await?;
    assert_eq!(docs.status().as_u16(), 200);
    assert!(docs.text().await?.contains("swagger"));

    let (status, jwks) = stack.get("/.well-known/jwks.json", None).await?;
    assert_eq!(status, 200);
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");

    // After some traffic the request counter carries the operation.
    stack.get("/healthz", None).await?;
    let metrics = stack.http.get(stack.url("/metrics")).send().await?.text().await?;
    assert!(metrics.contains("http_server_requests"), "{metrics}");
    assert!(metrics.contains("operation=\"health\""), "{metrics}");
    Ok(())
}

/// A static export in a temporary directory, as `scripts/build-web` leaves it.
fn web_export() -> Result<std::path::PathBuf> {
    let root = std::env::temp_dir().join(format!("parley-web-export-{}", uuid::Uuid::new_v4()));
    for (file, body) in [
        ("index.html", "<!doctype html><title>Parley</title>"),
        ("404.html", "<!doctype html><title>Not here</title>"),
        ("chats/index.html", "<!doctype html><title>Chats</title>"),
        ("_next/static/chunks/main-abc123.js", "console.log('plain')"),
        ("_next/static/chunks/main-abc123.js.gz", "pretend-gzip-bytes"),
        ("core/parley_core_bg.wasm", "\0asm"),
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap_or(&root))?;
        std::fs::write(path, body)?;
    }
    Ok(root)
}

#[tokio::test]
async fn the_web_app_is_served_under_app_with_a_strict_policy_and_the_api_keeps_its_paths() -> Result<()> {
    let export = web_export()?;
    let stack =
        Stack::start_with(parley_tests::StackOptions::default().env("PARLEY_WEB_DIR", &export.display().to_string()))
            .await?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let get = |path: &str| http.get(stack.url(path));

    // `/` leads to the app; `/app` to its directory form; a page without its slash likewise.
    for (from, to) in [("/", "/app/"), ("/app", "/app/"), ("/app/chats", "/app/chats/")] {
        let response = get(from).send().await?;
        assert_eq!(response.status().as_u16(), 302, "{from}");
        assert_eq!(response.headers()["location"], to, "{from}");
    }

    // Pages: HTML with the policy, never cached stale.
    let page = get("/app/").send().await?;
    assert_eq!(page.status().as_u16(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-cache");
    let policy = headers["content-security-policy"].to_str()?.to_owned();
    for directive in
        ["default-src 'none'", "script-src 'self' 'wasm-unsafe-eval'", "style-src 'self'", "connect-src 'self'"]
    {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline") && !policy.contains("http"), "{policy}");
    assert!(page.text().await?.contains("<title>Parley</title>"));

    // Hashed assets: immutable, and the gzip copy when the browser accepts it.
    let plain = get("/app/_next/static/chunks/main-abc123.js").send().await?;
    assert_eq!(plain.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(plain.headers().get("content-encoding").is_none());
    assert_eq!(plain.text().await?, "console.log('plain')");
    let gzipped =
        get("/app/_next/static/chunks/main-abc123.js").header("accept-encoding", "br, gzip;q=0.8").send().await?;
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(gzipped.text().await?, "pretend-gzip-bytes");
    let wasm = get("/app/core/parley_core_bg.wasm").send().await?;
    assert_eq!(wasm.headers()["content-type"], "application/wasm");

    // Nothing outside the export (sent raw: an HTTP client would resolve the dots itself); unknown
    // app paths get the app's 404 page; other methods 405.
    for outside in
        ["/app/../Cargo.toml", "/app/%2e%2e/%2e%2e/etc/passwd", "/app/.%2e/x", "/app//etc/passwd", "/app/nothing"]
    {
        let response = raw_get(&stack.base_url, outside).await?;
        assert!(response.starts_with("HTTP/1.1 404"), "{outside}: {response}");
        assert!(response.contains("Not here"), "{outside}: {response}");
    }
    let posted = http.post(stack.url("/app/")).body("x").send().await?;
    assert_eq!(posted.status().as_u16(), 405);
    assert_eq!(posted.headers()["allow"], "GET, HEAD");
    let body: serde_json::Value = posted.json().await?;
    assert_eq!(body["error"]["code"], "method_not_allowed");

    // The API's own paths are the API's, beside the app.
    let (status, health) = stack.get("/healthz", None).await?;
    assert_eq!((status, health["postgres"].as_bool()), (200, Some(true)));
    let (status, error) = stack.get("/chats", None).await?;
    assert_eq!(status, 401, "{error}");
    let (status, _) = stack.get("/application", None).await?;
    assert_eq!(status, 404);
    std::fs::remove_dir_all(export).ok();
    Ok(())
}

/// `GET path` as written, over a plain connection; the whole response as text.
async fn raw_get(base_url: &str, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base_url.trim_start_matches("http://");
    let mut connection = tokio::net::TcpStream::connect(address).await?;
    connection
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    connection.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

/// `(series, process)` of each row of the README's metrics table.
fn documented_series() -> Result<Vec<(String, String)>> {
    let readme = std::fs::read_to_string(parley_tests::repo_root().join("README.md"))?;
    let table = readme.split("### Metrics").nth(1).context("the README has a Metrics section")?;
    let rows: Vec<(String, String)> = table
        .lines()
        .skip_while(|l| !l.starts_with("| series"))
        .skip(2)
        .take_while(|l| l.starts_with("| `"))
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            Some((cells.get(1)?.trim_matches('`').to_owned(), cells.get(3)?.to_string()))
        })
        .collect();
    anyhow::ensure!(rows.len() >= 10, "too few documented series: {rows:?}");
    Ok(rows)
}

/// The metric families a process exposes (its `# TYPE` lines).
async fn exported(stack: &Stack, base: &str) -> Result<BTreeSet<String>> {
    let text = stack.http.get(format!("{base}/metrics")).send().await?.text().await?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect())
}

/// Every metric name a PromQL text uses (Parley's own prefixes), histogram suffixes taken off.
fn series_in(promql: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["parley_", "http_server_", "sfu_"] {
        let mut rest = promql;
        while let Some(at) = rest.find(prefix) {
            let starts_word =
                at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric() && rest.as_bytes()[at - 1] != b'_';
            let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if starts_word {
                let family =
                    ["_bucket", "_sum", "_count"].iter().fold(name.as_str(), |n, s| n.strip_suffix(s).unwrap_or(n));
                names.insert(family.to_owned());
            }
            rest = &rest[at + name.len().max(1)..];
        }
    }
    names
}

#[tokio::test]
async fn every_documented_series_is_exported_and_dashboards_and_alerts_use_only_those() -> Result<()> {
    let documented = documented_series()?;
    // Every 25th video packet the SFU sends is dropped, so receivers ask for retransmissions.
    let stack = Stack::start_with(
        parley_tests::StackOptions::default().with_sfu().env("PARLEY_SFU_TEST_DROP_EVERY_NTH_RTP", "25"),
    )
    .await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let mut socket = parley_tests::Socket::connect(&stack.base_url, &ada.token, None).await?;
    socket.send(&json!({"type": "ping"})).await?;
    socket.expect("pong", Duration::from_secs(5)).await?;
    stack.get("/no-such-route", None).await?;
    // Media both ways.
    let uploaded = stack.http.post(stack.url("/media")).bearer_auth(&ada.token).body(vec![7u8; 4096]).send().await?;
    let (status, media) = parley_tests::read(uploaded).await?;
    ensure!(status == 201, "upload: {status} {media}");
    let (status, _) = stack.get(&format!("/media/{}", parley_tests::text(&media["id"])?), Some(&ada.token)).await?;
    ensure!(status == 200, "download: {status}");
    let access = call_everyone(&stack, &chat, "video", &ada, &[&bob]).await?;
    let (first, second) = tokio::join!(
        run_peer(&access[0].0, &access[0].1, &["--seconds", "5"]),
        run_peer(&access[1].0, &access[1].1, &["--seconds", "5"]),
    );
    first?;
    second?;

    let sfu_base = stack.sfu_base.clone().context("the stack has an SFU")?;
    let wanted_from = |process: &str| -> BTreeSet<String> {
        documented.iter().filter(|(_, p)| p == process).map(|(name, _)| name.clone()).collect()
    };
    // The database gauges are sampled every 10 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let missing: Vec<String> = wanted_from("api")
            .difference(&exported(&stack, &stack.base_url).await?)
            .chain(wanted_from("projections").difference(&exported(&stack, &stack.projections_base).await?))
            .chain(wanted_from("sfu").difference(&exported(&stack, &sfu_base).await?))
            .cloned()
            .collect();
        if missing.is_empty() {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "documented but not exported: {missing:?}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }

    let monitoring = parley_tests::repo_root().join("k8s");
    let mut used = BTreeSet::new();
    for file in ["components/monitoring/alerts.yaml", "overlays/prod/hpa.yaml"] {
        used.extend(series_in(&std::fs::read_to_string(monitoring.join(file))?));
    }
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(monitoring.join("components/monitoring/dashboard.json"))?)?;
    for panel in dashboard["panels"].as_array().context("dashboard panels")? {
        for target in panel["targets"].as_array().context("panel targets")? {
            used.extend(series_in(target["expr"].as_str().context("a target's expr")?));
        }
    }
    let all: BTreeSet<String> = documented.into_iter().map(|(name, _)| name).collect();
    let unknown: Vec<&String> = used.difference(&all).collect();
    assert!(unknown.is_empty(), "dashboards or alerts use series nobody exports: {unknown:?}");
    assert!(used.len() >= 10, "the alerts and dashboard use {used:?}");
    Ok(())
}

#[test]
fn series_are_found_in_promql() {
    let found = series_in(
        r#"histogram_quantile(0.99, sum by (le) (rate(http_server_duration_seconds_bucket[5m]))) / max(parley_outbox_depth{x="sfu_y"})"#,
    );
    let expected: BTreeSet<String> =
        ["http_server_duration_seconds", "parley_outbox_depth", "sfu_y"].map(String::from).into();
    assert_eq!(found, expected);
}

#[tokio::test]
async fn a_requests_id_is_answered_and_stored_with_the_events_it_commits() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let response = stack
        .http
        .post(stack.url("/chats"))
        .bearer_auth(&ada.token)
        .header("x-request-id", "trace-me-42")
        .json(&serde_json::json!({"type": "direct", "member_ids": [bob.id]}))
        .send()
        .await?;
    assert_eq!(response.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("trace-me-42"));
    let (status, chat) = parley_tests::read(response).await?;
    assert_eq!(status, 201, "{chat}");
    let stored: Option<String> =
        sqlx::query_scalar("SELECT metadata->>'request_id' FROM events WHERE aggregate_id = $1 AND sequence = 1")
            .bind(parley_tests::text(&chat["id"])?)
            .fetch_one(&stack.pool)
            .await?;
    assert_eq!(stored.as_deref(), Some("trace-me-42"));

    // An id that could forge log lines is replaced by one of our own.
    let response = stack.http.get(stack.url("/healthz")).header("x-request-id", "two words").send().await?;
    let assigned = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(assigned.len() == 32 && assigned.bytes().all(|b| b.is_ascii_hexdigit()), "{assigned:?}");
    Ok(())
}

/// An OTLP/HTTP receiver (JSON encoding): every span posted to `/v1/traces`, flattened to
/// `{service, trace, span, parent, name, attributes}`.
struct Collector {
    endpoint: String,
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Collector {
    async fn start() -> Result<Self> {
        let port = parley_tests::free_port()?;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let route =
            poem::EndpointExt::data(poem::Route::new().at("/v1/traces", poem::post(receive_spans)), Arc::clone(&spans));
        let listener = poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"));
        tokio::spawn(poem::Server::new(listener).run(route));
        Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), spans })
    }

    fn spans(&self) -> Vec<Value> {
        self.spans.lock().map(|spans| spans.clone()).unwrap_or_default()
    }
}

#[poem::handler]
fn receive_spans(
    poem::web::Data(store): poem::web::Data<&Arc<Mutex<Vec<Value>>>>,
    poem::web::Json(export): poem::web::Json<Value>,
) -> poem::web::Json<Value> {
    let attributes = |list: &Value| -> serde_json::Map<String, Value> {
        let pairs = list.as_array().into_iter().flatten();
        pairs
            .filter_map(|kv| {
                let value = kv["value"].as_object()?.values().next()?.clone();
                Some((kv["key"].as_str()?.to_owned(), value))
            })
            .collect()
    };
    let mut received = Vec::new();
    for resource in export["resourceSpans"].as_array().into_iter().flatten() {
        let service = attributes(&resource["resource"]["attributes"]).get("service.name").cloned();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                received.push(json!({
                    "service": service,
                    "trace": span["traceId"],
                    "span": span["spanId"],
                    "parent": span["parentSpanId"],
                    "name": span["name"],
                    "attributes": attributes(&span["attributes"]),
                }));
            }
        }
    }
    if let Ok(mut spans) = store.lock() {
        spans.extend(received);
    }
    poem::web::Json(json!({}))
}

/// The one span of `trace` named `name` from `service`.
fn span_named<'a>(spans: &'a [Value], trace: &str, service: &str, name: &str) -> Option<&'a Value> {
    spans.iter().find(|s| s["trace"] == trace && s["service"] == service && s["name"] == name)
}

#[tokio::test]
async fn one_trace_follows_a_message_from_its_request_through_the_relay_and_projector_to_the_frame() -> Result<()> {
    let collector = Collector::start().await?;
    let stack = Stack::start_with(
        parley_tests::StackOptions::default()
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env("PARLEY_LOG", "info,parley_api::ops=debug")
            // A quiet log does not quiet the traces.
            .process_env("parley-projections", "PARLEY_LOG", "warn"),
    )
    .await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let mut socket = parley_tests::Socket::connect(&stack.base_url, &bob.token, None).await?;
    let (status, sent) = parley_tests::send(&stack, &chat, &ada, "traced-1", "traced hello").await?;
    let body = parley_tests::ciphertext("traced hello");
    ensure!(status == 201, "send: {status} {sent}");
    socket.expect("message.created", Duration::from_secs(10)).await?;

    let route = "POST /chats/{id}/messages";
    let mut trace = String::new();
    let found = stack
        .eventually(Duration::from_secs(15), "the message's spans from every process", || {
            let spans = collector.spans();
            let request = spans.iter().find(|s| {
                s["name"] == route
                    && s["service"] == "parley-api"
                    && s["attributes"]["user.id"] == ada.id.as_str()
                    && s["attributes"]["http.response.status_code"] == "201"
            });
            trace = request.map(|s| s["trace"].as_str().unwrap_or_default().to_owned()).unwrap_or_default();
            let complete = request.is_some()
                && span_named(&spans, &trace, "parley-projections", "project").is_some()
                && span_named(&spans, &trace, "parley-api", "ws.deliver").is_some();
            async move { Ok(complete) }
        })
        .await;
    if let Err(error) = found {
        let seen: Vec<String> = collector
            .spans()
            .iter()
            .map(|s| format!("{} {} {} {}", s["service"], s["name"], s["trace"], s["parent"]))
            .collect();
        return Err(error.context(format!("spans received: {seen:#?}")));
    }

    // One chain: request → command → commit, the relay's publish under the command, the
    // projector's delivery under the publish, the frame's delivery under the projector.
    let spans = collector.spans();
    let span = |service: &str, name: &str| {
        span_named(&spans, &trace, service, name).with_context(|| format!("{service} {name} in {trace}: {spans:#?}"))
    };
    let request = span("parley-api", route)?;
    let command = span("parley-api", "command")?;
    let commit = span("parley-api", "commit")?;
    let relay = span("parley-api", "relay.publish")?;
    let project = span("parley-projections", "project")?;
    let deliver = span("parley-api", "ws.deliver")?;
    assert_eq!(command["parent"], request["span"], "{command}");
    assert_eq!(command["attributes"]["aggregate"], "Chat", "{command}");
    assert_eq!(commit["parent"], command["span"], "{commit}");
    assert_eq!(relay["parent"], command["span"], "{relay}");
    assert_eq!(project["parent"], relay["span"], "{project}");
    assert_eq!(deliver["parent"], project["span"], "{deliver}");
    assert_eq!(request["attributes"]["http.route"], "/chats/{id}/messages", "{request}");

    // The event's metadata holds the context the relay continued.
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT metadata->>'traceparent' FROM events WHERE aggregate_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&chat)
    .fetch_one(&stack.pool)
    .await?;
    let command_span = command["span"].as_str().unwrap_or_default();
    assert_eq!(stored, Some(format!("00-{trace}-{command_span}-01")));

    // The request's log lines carry the trace id; no token or ciphertext reaches the collector or
    // the logs (the recipient's token was in its socket's URL).
    let api_log = std::fs::read_to_string(stack.data_dir().with_file_name("api.log"))?;
    assert!(api_log.lines().any(|line| line.contains(&format!(r#""trace_id":"{trace}""#))), "no log line of {trace}");
    let exported = serde_json::to_string(&spans)?;
    let projections_log = std::fs::read_to_string(stack.data_dir().with_file_name("projections.log"))?;
    for secret in [ada.token.as_str(), bob.token.as_str(), body.as_str()] {
        assert!(!exported.contains(secret), "a span holds a secret");
        assert!(!api_log.contains(secret) && !projections_log.contains(secret), "a log line holds a secret");
    }
    Ok(())
}

#[tokio::test]
async fn metrics_want_the_operators_token_when_one_is_set() -> Result<()> {
    let stack =
        Stack::start_with(parley_tests::StackOptions::default().env("PARLEY_METRICS_TOKEN", "scrape-me-7f3a")).await?;
    let scrape = |authorization: Option<&'static str>| {
        let mut request = stack.http.get(stack.url("/metrics"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move { parley_tests::read(request.send().await?).await }
    };
    for refused in [None, Some("Bearer wrong"), Some("Bearer scrape-me-7f3"), Some("scrape-me-7f3a")] {
        let (status, body) = scrape(refused).await?;
        assert_eq!(status, 401, "{refused:?}: {body}");
        assert_eq!(parley_tests::error_code(&body)?, "unauthorized", "{body}");
    }
    let (status, body) = scrape(Some("Bearer scrape-me-7f3a")).await?;
    assert_eq!(status, 200, "{body}");
    assert!(body.as_str().unwrap_or_default().contains("http_server_requests_total"), "{body}");
    // The rest of the api does not care.
    assert_eq!(stack.get("/healthz", None).await?.0, 200);
    Ok(())
}
