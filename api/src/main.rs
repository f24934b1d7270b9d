//! `parley-api [serve | migrate | openapi [FILE] | health]`

use std::process::ExitCode;

use parley_api::config::Config;

// Under load the services spend a measurable share of their CPU in glibc's malloc and free
// (about 7 % of the whole machine in the messaging benchmark); mimalloc's per-thread free lists
// are cheaper for the many small, short-lived allocations of JSON and HTTP handling.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("openapi") {
        let spec = parley_api::app::openapi_json();
        return match args.get(1) {
            Some(path) => match std::fs::write(path, spec + "\n") {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("cannot write {path}: {error}");
                    ExitCode::FAILURE
                }
            },
            None => {
                println!("{spec}");
                ExitCode::SUCCESS
            }
        };
    }
    if args.first().map(String::as_str) == Some("health") {
        return health();
    }
    let env = parley_runtime::Env::from_process();
    let config = parley_runtime::traces::init_from_env("parley-api", &env)
        .and_then(|traces| Ok((traces, Config::from_env(&env)?)));
    let (traces, config) = match config {
        Ok(started) => started,
        Err(error) => {
            tracing::error!(%error, "invalid configuration");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => parley_api::app::serve(config).await,
        Some("migrate") => migrate(&config).await,
        Some(other) => {
            eprintln!("unknown command {other:?}; usage: parley-api [serve | migrate | openapi [FILE] | health]");
            return ExitCode::from(2);
        }
    };
    traces.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "parley-api failed");
            ExitCode::FAILURE
        }
    }
}

/// The image's HEALTHCHECK: `PARLEY_HEALTH_URL`, by default this host's api `/healthz`.
fn health() -> ExitCode {
    let env = parley_runtime::Env::from_process();
    let url = match env.string("PARLEY_HEALTH_URL", "http://127.0.0.1:8080/healthz") {
        Ok(url) => url,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match parley_runtime::health::probe(&url, std::time::Duration::from_secs(3)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("unhealthy: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = sqlx::PgPool::connect(config.database_url.expose()).await?;
    parley_eventbus::migrate(&pool).await?;
    tracing::info!("migrations applied");
    Ok(())
}
