//! Wiring: the OpenAPI service, middleware, and the server's start-up and shutdown.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use poem::error::ReadBodyError;
use poem::http::{header, Method};
use poem::listener::{Listener, TcpListener};
use poem::middleware::CatchPanic;
use poem::{Body, Endpoint, EndpointExt, IntoResponse, Request, Response, Route, Server};
use poem_openapi::OpenApiService;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;

use crate::auth::captcha::CaptchaVerifier;
use crate::auth::rate_limit::RateLimiter;
use crate::auth::revocation::{self, Revocations};
use crate::auth::routes::AuthApi;
use crate::auth::shared_limits::SharedRateLimiter;
use crate::auth::tokens::TokenKeys;
use crate::calls::placement::SfuNodes;
use crate::calls::routes::CallsApi;
use crate::chats::routes::ChatsApi;
use crate::commands::{CommandBus, EventStore, ProjectionProgress};
use crate::config::Config;
use crate::error::{render_any_error, ApiError};
use crate::keys::routes::{KeysApi, ToDeviceApi};
use crate::media::routes::MediaApi;
use crate::media::uploads::UploadsApi;
use crate::notifications::routes::NotificationsApi;
use crate::ops::framing::JsonFramingErrors;
use crate::ops::metrics::{self, Metrics};
use crate::ops::routes::OpsApi;
use crate::state::AppState;
use crate::users::routes::UsersApi;

pub type Apis =
    (OpsApi, AuthApi, UsersApi, ChatsApi, CallsApi, MediaApi, UploadsApi, NotificationsApi, KeysApi, ToDeviceApi);

pub fn api_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (OpsApi, AuthApi, UsersApi, ChatsApi, CallsApi, MediaApi, UploadsApi, NotificationsApi, KeysApi, ToDeviceApi),
        "Parley",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Parley messaging backend. Errors are `{\"error\": {\"code\", \"message\"}}`.")
    .server("http://127.0.0.1:8080")
    .extra_response_header::<String, _>(poem_openapi::ExtraHeader::new("X-Request-Id").description(
        "This request's id: the client's own X-Request-Id when it is 1-64 of [A-Za-z0-9._-], else a new one. \
         Stored with the events the request commits.",
    ))
}

/// The OpenAPI document, as served and committed under `openapi/`.
pub fn openapi_json() -> String {
    crate::openapi::spec_json()
}

/// The whole HTTP application around a ready state.
pub fn endpoint(state: Arc<AppState>) -> impl Endpoint {
    let api = api_service();
    let max_body = state.config.max_json_body_bytes;
    let body_stall = state.config.body_stall_timeout;
    Route::new()
        .at("/openapi.json", poem::get(serve_spec))
        .at("/ws", poem::get(crate::realtime::connect))
        .nest("/docs", api.swagger_ui())
        .nest("/", api)
        .around(move |next, req| limit_body(next, req, max_body, body_stall))
        .around(serve_web_app)
        .around(metrics::observe)
        .around(crate::ops::request_id::assign)
        .data(state)
        .with(
            CatchPanic::new().with_handler(|_| ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()),
        )
        .catch_all_error(|error| async move { render_any_error(error) })
}

/// `GET /openapi.json`: built once, on first request.
#[poem::handler]
fn serve_spec() -> Response {
    static SPEC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let spec = SPEC.get_or_init(openapi_json).clone();
    Response::builder().content_type("application/json; charset=utf-8").body(spec)
}

/// `/` and everything under `/app` is the web app; the rest is the API.
async fn serve_web_app<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path();
    let is_app = path == "/" || path == crate::web::APP_PREFIX || path.starts_with("/app/");
    match req.data::<Arc<AppState>>() {
        Some(state) if is_app => Ok(crate::web::serve(&req, &state.config.web_dir, &state.page_csp).await?),
        _ => Ok(next.call(req).await?.into_response()),
    }
}

/// Body limit of `POST /to-device` (when larger than the general JSON limit).
pub const TO_DEVICE_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Refuses bodies over `max` bytes (declared or streamed) with 413, and lets a body-less POST
/// through as JSON `null` so that optional bodies (e.g. logout's) may be omitted. A body that
/// stalls for `stall` (shorter than its `Content-Length`, or a client gone quiet) ends in 400
/// instead of holding the request, and its connection, open.
async fn limit_body<E: Endpoint>(next: E, mut req: Request, max: usize, stall: Duration) -> poem::Result<Response> {
    // Media uploads stream to storage under their own limit; they are never buffered here.
    let path = req.uri().path();
    if path == "/media" || path == "/media/" || (path.starts_with("/media/uploads/") && req.method() == Method::PATCH) {
        // Raw bytes whatever their declared type; an undeclared one is recorded as octet-stream.
        if req.header(header::CONTENT_TYPE).is_none() {
            req.headers_mut()
                .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
        }
        let body = stall_limited(req.take_body(), stall);
        req.set_body(body);
        return Ok(next.call(req).await?.into_response());
    }
    // A room key for a 1,000-device group travels in one to-device batch.
    let max = if path == "/to-device" { max.max(TO_DEVICE_MAX_BODY_BYTES) } else { max };
    let declared = req.header(header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(ApiError::PayloadTooLarge { limit: max }.into());
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let body = stall_limited(req.take_body(), stall);
        let bytes = body.into_bytes_limit(max).await.map_err(|error| match error {
            ReadBodyError::PayloadTooLarge => ApiError::PayloadTooLarge { limit: max },
            other => ApiError::invalid("body_incomplete", format!("the request body could not be read: {other}")),
        })?;
        if bytes.is_empty() && req.header(header::CONTENT_TYPE).is_none() {
            req.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
        }
        req.set_body(Body::from_bytes(bytes));
    }
    Ok(next.call(req).await?.into_response())
}

/// `body`, failing with `TimedOut` once no byte of it has arrived for `stall`.
fn stall_limited(body: Body, stall: Duration) -> Body {
    let chunks = Some(body.into_bytes_stream().boxed());
    Body::from_bytes_stream(futures::stream::unfold(chunks, move |chunks| async move {
        let mut chunks = chunks?;
        match tokio::time::timeout(stall, chunks.next()).await {
            Ok(Some(chunk)) => Some((chunk, Some(chunks))),
            Ok(None) => None,
            Err(_) => {
                let message = format!("no byte of the body arrived for {} s", stall.as_secs());
                Some((Err(std::io::Error::new(std::io::ErrorKind::TimedOut, message)), None))
            }
        }
    }))
}

/// Connects everything, runs migrations, starts the outbox relay and serves until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(config.database_url.expose())
        .await?;
    parley_eventbus::migrate(&pool).await?;
    let nats = config.nats.connect("parley-api").await?;
    let jetstream = async_nats::jetstream::new(nats.clone());
    let revocation_jetstream = jetstream.clone();
    let limits_jetstream = jetstream.clone();

    let (shutdown_tx, shutdown) = watch::channel(false);
    let local_commits = Arc::new(tokio::sync::Notify::new());
    let relay_task = {
        let (pool, settings, commits) = (pool.clone(), config.stream.clone(), Arc::clone(&local_commits));
        supervise("relay", shutdown, move |shutdown| {
            parley_eventbus::relay::Relay::new(&pool, jetstream.clone(), settings.clone(), Arc::clone(&commits))
                .run(shutdown)
        })
    };

    let tokens = TokenKeys::load_or_generate(
        config.jwt_private_key_pem.as_ref().map(|s| s.expose()),
        &config.data_dir,
        &config.jwt_issuer,
        config.access_token_ttl,
    )?;
    let tokens = match &config.jwt_accepted_public_keys {
        Some(pems) => tokens.accepting(pems)?,
        None => tokens,
    };
    let captcha = config.captcha.clone().map(CaptchaVerifier::new).transpose()?;
    let metrics = Arc::new(Metrics::new()?);
    let limiter = SharedRateLimiter::open(
        &limits_jetstream,
        &config.rate_limit_bucket,
        config.rate_limits.longest_window(),
        config.rate_limit_max_keys,
        RateLimiter::with_capacity(config.rate_limit_max_keys),
    )
    .await;
    let event_store = EventStore::start(pool.clone(), local_commits, metrics.events_appended.clone());
    let state = Arc::new(AppState {
        users: CommandBus::new(event_store.clone(), ()),
        sessions: CommandBus::new(event_store.clone(), ()),
        chats: CommandBus::new(event_store.clone(), ()),
        calls: CommandBus::new(event_store.clone(), ()),
        media: CommandBus::new(event_store.clone(), ()),
        storage: crate::media::storage::MediaStorage::open(&config.media_storage, config.media_prefix.as_deref())?,
        devices: CommandBus::new(event_store.clone(), ()),
        to_device: CommandBus::new(event_store.clone(), ()),
        inboxes: CommandBus::new(event_store, ()),
        progress: ProjectionProgress::start(pool.clone()).await?,
        revocations: Arc::new(Revocations::new(config.access_token_ttl)),
        tokens,
        limiter,
        typing: Default::default(),
        realtime_hub: Default::default(),
        captcha,
        sfu_nodes: SfuNodes::new(config.sfu_node_deadline),
        metrics,
        page_csp: crate::web::page_csp(crate::web::sfu_origin(&config.sfu_url).as_deref()),
        pool,
        nats,
        config,
    });
    let sweeper_task = supervise("ringing sweeper", shutdown_tx.subscribe(), {
        let state = Arc::clone(&state);
        move |shutdown| crate::calls::sweeper::run(Arc::clone(&state), shutdown)
    });
    let reaper_task = supervise("media reaper", shutdown_tx.subscribe(), {
        let state = Arc::clone(&state);
        move |shutdown| crate::media::reaper::run(Arc::clone(&state), shutdown)
    });
    let revocations_task = supervise("session revocations", shutdown_tx.subscribe(), {
        let (revocations, settings) = (Arc::clone(&state.revocations), state.config.stream.clone());
        move |shutdown| {
            revocation::follow(revocation_jetstream.clone(), settings.clone(), Arc::clone(&revocations), shutdown)
        }
    });
    let sfu_reports_task = supervise("SFU reports", shutdown_tx.subscribe(), {
        let state = Arc::clone(&state);
        move |shutdown| crate::calls::sfu_reports::run(Arc::clone(&state), shutdown)
    });
    let hub_task = supervise("realtime hub", shutdown_tx.subscribe(), {
        let state = Arc::clone(&state);
        move |shutdown| crate::realtime::hub::run(Arc::clone(&state), shutdown)
    });
    let sfu_nodes_task = supervise("SFU directory", shutdown_tx.subscribe(), {
        let state = Arc::clone(&state);
        move |shutdown| crate::calls::placement::run(Arc::clone(&state), shutdown)
    });
    let sampler_task = supervise("operational gauges", shutdown_tx.subscribe(), {
        let state = Arc::clone(&state);
        move |shutdown| crate::ops::sampler::run(Arc::clone(&state), shutdown)
    });
    let addr = state.config.http_addr;
    tracing::info!(%addr, "parley-api listening");
    let acceptor = JsonFramingErrors(TcpListener::bind(addr).into_acceptor().await?);
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(endpoint(state), parley_runtime::shutdown::signal(), Some(Duration::from_secs(10)))
        .await?;
    let _ = shutdown_tx.send(true);
    let _ = relay_task.await;
    let _ = sweeper_task.await;
    let _ = sfu_reports_task.await;
    let _ = reaper_task.await;
    let _ = revocations_task.await;
    let _ = sampler_task.await;
    let _ = sfu_nodes_task.await;
    let _ = hub_task.await;
    Ok(())
}

/// Runs a background task until shutdown, starting it again (after a pause) if it panics, so
/// one bad moment does not silently stop the relay or a sweeper for the life of the process.
fn supervise<F, Fut>(name: &'static str, mut shutdown: watch::Receiver<bool>, start: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(watch::Receiver<bool>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            match tokio::spawn(start(shutdown.clone())).await {
                Err(error) if error.is_panic() => tracing::error!(task = name, "background task panicked; restarting"),
                _ => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    /// The committed spec is what SDKs are generated from: it must match the code.
    #[test]
    fn committed_openapi_spec_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == super::openapi_json() + "\n",
            "openapi/openapi.json is stale: run `cargo run -p parley-api -- openapi openapi/openapi.json`"
        );
    }
}
