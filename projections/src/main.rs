//! `parley-projections [run | rebuild <projection> | migrate]`

use std::process::ExitCode;

use std::sync::Arc;

use parley_projections::config::ProjectorConfig;
use parley_projections::metrics::ProjectionMetrics;
use parley_projections::{all_projections, projection_groups, projector, ProjectionError};
use poem::listener::TcpListener;
use poem::web::Data;
use poem::{handler, EndpointExt, Route, Server};
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;
use tokio::sync::watch;

// Under load the services spend a measurable share of their CPU in glibc's malloc and free
// (about 7 % of the whole machine in the messaging benchmark); mimalloc's per-thread free lists
// are cheaper for the many small, short-lived allocations of JSON and HTTP handling.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env = parley_runtime::Env::from_process();
    let config = parley_runtime::traces::init_from_env("parley-projections", &env)
        .and_then(|traces| Ok((traces, ProjectorConfig::from_env(&env)?)));
    let (traces, config) = match config {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(%error, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        None | Some("run") => run(config).await,
        Some("rebuild") => match args.get(1) {
            Some(name) => rebuild(config, name).await,
            None => Err(ProjectionError::UnknownProjection(String::new())),
        },
        Some("migrate") => connect(&config).await.map(|_| ()),
        Some(other) => {
            eprintln!("unknown command {other:?}; usage: parley-projections [run | rebuild <projection> | migrate]");
            return ExitCode::from(2);
        }
    };
    traces.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "parley-projections failed");
            ExitCode::FAILURE
        }
    }
}

async fn connect(config: &ProjectorConfig) -> Result<sqlx::PgPool, ProjectionError> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        // Every projector statement is keyed by arrays of ids. With the default plan cache mode,
        // PostgreSQL kept re-planning the progress statement on every delivery (the small arrays
        // of a live stream make each custom plan look cheaper than the generic one): 0.45 ms of
        // planning per call, about 6 % of its CPU in the messaging benchmark (pg_stat_statements
        // with track_planning). The generic plans are the same index lookups.
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET plan_cache_mode = force_generic_plan").await?;
                Ok(())
            })
        })
        .connect(config.database_url.expose())
        .await?;
    parley_eventbus::migrate(&pool).await?;
    Ok(pool)
}

async fn run(config: ProjectorConfig) -> Result<(), ProjectionError> {
    let pool = connect(&config).await?;
    let client = config.nats.connect("parley-projections").await?;
    // A projector that died between a feed commit and its publish left frames unannounced: every
    // api replica's sockets read their feeds once.
    let resync = parley_eventbus::stream::resync_subject(&config.realtime_prefix);
    if let Err(error) = client.publish(resync, Default::default()).await {
        tracing::warn!(%error, "could not ask the api replicas to resync their sockets");
    }
    let jetstream = async_nats::jetstream::new(client.clone());
    let metrics = Arc::new(ProjectionMetrics::new().map_err(|e| ProjectionError::Inconsistent(e.to_string()))?);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let mut tasks = Vec::new();
    for group in projection_groups(&config.realtime_prefix) {
        let names: Vec<&str> = group.iter().map(|p| p.name()).collect();
        let consumer = format!("{}-{}", config.consumer_prefix, names.join("-"));
        // Before projections were grouped, each had a consumer of its own.
        let superseded: Vec<String> = match names.len() {
            1 => Vec::new(),
            _ => names.iter().map(|name| format!("{}-{name}", config.consumer_prefix)).collect(),
        };
        tracing::info!(projections = ?names, consumer, "starting projections");
        tasks.push(tokio::spawn(projector::run_projections(
            pool.clone(),
            jetstream.clone(),
            config.stream.clone(),
            projector::GroupConsumer { name: consumer, superseded },
            group,
            Arc::clone(&metrics),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(purge_expired_to_device(pool.clone(), config.to_device_ttl, shutdown.clone())));
    let app = Route::new()
        .at("/metrics", poem::get(metrics_endpoint))
        .at("/healthz", poem::get(health))
        .data(metrics)
        .data(Health { pool: pool.clone(), nats: client });
    tracing::info!(addr = %config.http_addr, "parley-projections serving /metrics and /healthz");
    Server::new(TcpListener::bind(config.http_addr))
        .run_with_graceful_shutdown(app, parley_runtime::shutdown::signal(), Some(std::time::Duration::from_secs(5)))
        .await
        .map_err(|e| ProjectionError::Inconsistent(format!("HTTP server on {}: {e}", config.http_addr)))?;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}

#[handler]
fn metrics_endpoint(Data(metrics): Data<&Arc<ProjectionMetrics>>) -> String {
    metrics.render()
}

#[derive(Clone)]
struct Health {
    pool: sqlx::PgPool,
    nats: async_nats::Client,
}

/// 200 when PostgreSQL answers and NATS is connected (what the projectors need to make
/// progress), else 503.
#[handler]
async fn health(Data(health): Data<&Health>) -> poem::Response {
    let postgres = sqlx::query!("SELECT 1 AS alive").fetch_one(&health.pool).await.is_ok();
    let nats = health.nats.connection_state() == async_nats::connection::State::Connected;
    let status =
        if postgres && nats { poem::http::StatusCode::OK } else { poem::http::StatusCode::SERVICE_UNAVAILABLE };
    poem::Response::builder().status(status).body(format!("postgres={postgres} nats={nats}"))
}

/// Deletes to-device messages their device never acknowledged within the configured age (the api
/// already stops serving them then).
async fn purge_expired_to_device(pool: sqlx::PgPool, ttl: std::time::Duration, mut shutdown: watch::Receiver<bool>) {
    let ttl_secs = ttl.as_secs_f64();
    loop {
        let purged = sqlx::query!(
            "DELETE FROM to_device_messages WHERE created_at < now() - make_interval(secs => $1)",
            ttl_secs
        )
        .execute(&pool)
        .await;
        match purged {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::info!(purged = done.rows_affected(), "expired to-device messages deleted")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not delete expired to-device messages"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn rebuild(config: ProjectorConfig, name: &str) -> Result<(), ProjectionError> {
    let pool = connect(&config).await?;
    let projection = all_projections(&config.realtime_prefix)
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| ProjectionError::UnknownProjection(name.to_owned()))?;
    let applied = projector::rebuild(&pool, projection.as_ref()).await?;
    tracing::info!(projection = name, applied, "rebuilt from the event store");
    Ok(())
}
