//! A harness that starts a real Parley stack per test: a fresh database on the test PostgreSQL
//! server, a private JetStream stream on the test NATS server, and the `parley-api` and
//! `parley-projections` binaries as child processes. `scripts/test` starts the servers and builds
//! the binaries; see there for the environment it sets.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::process::{Child, Command};
use uuid::Uuid;

pub mod bench;
pub mod devices;
pub mod fixtures;
pub mod proxy;

pub use fixtures::{access, call_everyone, ciphertext, decoded, direct, group, member, send, sfu_stack, text, Member};

pub fn admin_database_url() -> String {
    std::env::var("PARLEY_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://parley@127.0.0.1:55433/postgres".into())
}

pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:54223".into())
}

/// Creates the empty database `name` on the test server and returns its URL: each test that
/// needs PostgreSQL gets a database of its own, so tests run in parallel without seeing each
/// other's rows. They are left for inspection; `scripts/test` starts from an empty server.
pub async fn create_database(name: &str) -> Result<String> {
    create_database_on(&admin_database_url(), name).await
}

/// `create_database` on the server of `admin_url`.
pub async fn create_database_on(admin_url: &str, name: &str) -> Result<String> {
    let admin = PgPoolOptions::new().max_connections(1).connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await?;
    admin.close().await;
    match admin_url.rsplit_once('/') {
        Some((server, _)) => Ok(format!("{server}/{name}")),
        None => bail!("bad PARLEY_TEST_DATABASE_URL"),
    }
}

/// A database of its own for one test, named after `purpose` (`[a-z_]`).
pub async fn fresh_database(purpose: &str) -> Result<String> {
    create_database(&format!("{purpose}_{}", &Uuid::new_v4().simple().to_string()[..12])).await
}

fn state_dir() -> PathBuf {
    std::env::var("PARLEY_TEST_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("parley-test"))
}

/// The workspace's built binary `name` (next to this test binary's `deps/` folder).
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|deps| deps.parent()).context("test binary has no parent folder")?;
    let path = dir.join(name);
    if !path.exists() {
        bail!("{} not found: run `cargo build --workspace --bins` first (scripts/test does)", path.display());
    }
    Ok(path)
}

pub fn free_port() -> Result<u16> {
    unused_port(|| Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()))
}

/// Ports this test process handed out: the kernel may offer a released port again before the
/// stack it was meant for has bound it, and two stacks on one port talk to the wrong server.
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

fn unused_port(pick: impl Fn() -> Result<u16>) -> Result<u16> {
    for _ in 0..100 {
        let port = pick()?;
        let mut handed_out = HANDED_OUT.lock().map_err(|_| anyhow::anyhow!("port register poisoned"))?;
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    bail!("no unused port after 100 tries")
}

/// What one headless-Chromium peer (`tests/peers/chromium_peer.cjs`) sent and decoded. Its
/// playwright-core is the web workspace's (`web/node_modules`, installed by `scripts/build-web`).
pub async fn run_chromium_peer(url: &str, token: &str, seconds: u32, args: &[&str]) -> Result<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/chromium_peer.cjs");
    let modules = std::env::var("PARLEY_TEST_NODE_PATH")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../web/node_modules").into());
    let output = Command::new("node")
        .arg(script)
        .arg(url)
        .arg(token)
        .arg(seconds.to_string())
        .args(args)
        .env("NODE_PATH", modules)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running the Chromium peer (node with playwright-core, Debian's chromium)")?;
    peer_report(&output, "Chromium peer")
}

/// The repository's root (the tests crate sits in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Where browser tests leave screenshots: `<state dir>/artifacts/web` (`.parley/test/artifacts/web`
/// under `scripts/test`).
pub fn web_artifacts_dir() -> PathBuf {
    std::env::var("PARLEY_TEST_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join(".parley/test"))
        .join("artifacts/web")
}

/// Runs one browser scenario of the web app (`web/e2e/scenarios/<name>.mjs`, headless Chromium
/// through playwright-core from the web workspace's lockfile) against `base_url`; its report, the
/// JSON line it printed last. Gives up after `timeout`.
pub async fn run_web_scenario(base_url: &str, name: &str, args: &[String], timeout: Duration) -> Result<Value> {
    let script = repo_root().join("web/e2e/run.mjs");
    let run = Command::new("node")
        .arg(&script)
        .arg(name)
        .arg(base_url)
        .args(args)
        .env("PARLEY_WEB_ARTIFACTS", web_artifacts_dir())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(timeout, run)
        .await
        .with_context(|| format!("web scenario {name} still running after {timeout:?}"))?
        .context("running node web/e2e/run.mjs (Node >= 20 on PATH, `npm ci` in web/: scripts/test does both)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().last().and_then(|line| serde_json::from_str(line).ok()) {
        Some(report) => Ok(report),
        None => bail!(
            "web scenario {name} printed no report ({}); stdout: {}; stderr: {}",
            output.status,
            tail(&stdout, 2000),
            tail(&String::from_utf8_lossy(&output.stderr), 4000)
        ),
    }
}

/// The last `max` bytes of `text` (on a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The claims of a JWT, unverified (tests read what the api put in tokens).
pub fn jwt_claims(token: &str) -> Result<Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap_or_default();
    Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?)
}

pub fn free_udp_port() -> Result<u16> {
    unused_port(|| Ok(std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port()))
}

/// The Python with aiortc that `scripts/test` installs, for the SFU's independent test peers.
pub fn python() -> String {
    std::env::var("PARLEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// What one aiortc peer (`tests/peers/sfu_peer.py`) saw: frames per received track, the last
/// `participants` frame, errors, the close reason.
pub async fn run_peer(url: &str, token: &str, args: &[&str]) -> Result<Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/sfu_peer.py");
    let output = Command::new(python())
        .arg(script)
        .arg(url)
        .arg(token)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("running the aiortc peer (set PARLEY_TEST_PYTHON to a Python with aiortc)")?;
    peer_report(&output, "aiortc peer")
}

/// A test peer's report: the last line it printed, as JSON.
fn peer_report(output: &std::process::Output, peer: &str) -> Result<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(last) = stdout.lines().last() else {
        bail!("{peer} printed nothing: {}", String::from_utf8_lossy(&output.stderr));
    };
    serde_json::from_str(last).with_context(|| format!("{peer} output: {last}"))
}

/// Settings for one stack; `env` overrides the defaults below.
#[derive(Debug, Clone, Default)]
pub struct StackOptions {
    pub env: HashMap<String, String>,
    /// Variables for one binary only (`parley-api`, ...), over `env`.
    pub process_env: HashMap<String, HashMap<String, String>>,
    /// Use this NATS server instead of the shared test server.
    pub nats_url: Option<String>,
    /// Create the stack's database on this server (its admin URL) instead of the shared one.
    pub database_admin_url: Option<String>,
    /// Run this many `parley-sfu` nodes, wired to the api (directory, join tokens, reports).
    pub sfu_nodes: usize,
    /// Variables for one SFU node only (by index), over everything else.
    pub sfu_node_env: HashMap<usize, Vec<(String, String)>>,
}

impl StackOptions {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn process_env(mut self, binary: &str, key: &str, value: &str) -> Self {
        self.process_env.entry(binary.to_owned()).or_default().insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn with_sfu(self) -> Self {
        self.with_sfus(1)
    }

    pub fn with_sfus(mut self, nodes: usize) -> Self {
        self.sfu_nodes = nodes;
        self
    }

    pub fn sfu_node_env(mut self, index: usize, key: &str, value: &str) -> Self {
        self.sfu_node_env.entry(index).or_default().push((key.to_owned(), value.to_owned()));
        self
    }
}

/// One `parley-sfu` process of a stack.
struct SfuNodeProcess {
    child: Option<Child>,
    node_id: String,
    url: String,
    base: String,
    /// Its own addresses.
    env: Vec<(String, String)>,
}

pub struct Stack {
    pub id: String,
    pub base_url: String,
    /// The projector's `/metrics` and `/healthz`.
    pub projections_base: String,
    pub database_url: String,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub stream_name: String,
    env: HashMap<String, String>,
    process_env: HashMap<String, HashMap<String, String>>,
    api: Option<Child>,
    /// Replicas beside `api`, with their ports.
    extra_apis: Vec<(Child, u16)>,
    projector: Option<Child>,
    sfus: Vec<SfuNodeProcess>,
    /// The (first) SFU's HTTP base (`/metrics`, `/healthz`) when the stack runs one.
    pub sfu_base: Option<String>,
    log_dir: PathBuf,
}

impl Stack {
    pub async fn start() -> Result<Self> {
        Self::start_with(StackOptions::default()).await
    }

    pub async fn start_with(options: StackOptions) -> Result<Self> {
        let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let admin_url = options.database_admin_url.clone().unwrap_or_else(admin_database_url);
        let database_url = create_database_on(&admin_url, &format!("parley_{id}")).await?;
        let port = free_port()?;
        let projections_port = free_port()?;
        let log_dir = state_dir().join("stacks").join(&id);
        std::fs::create_dir_all(&log_dir)?;
        let stream_name = format!("T{id}");
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", database_url.clone()),
            ("NATS_URL", options.nats_url.clone().unwrap_or_else(nats_url)),
            ("PARLEY_NATS_STREAM", stream_name.clone()),
            ("PARLEY_NATS_SUBJECT_PREFIX", format!("t{id}.events")),
            ("PARLEY_NATS_CONSUMER_PREFIX", format!("t{id}")),
            ("PARLEY_NATS_REALTIME_PREFIX", format!("t{id}.rt")),
            ("PARLEY_NATS_RATE_LIMIT_BUCKET", format!("t{id}_limits")),
            ("PARLEY_HTTP_ADDR", format!("127.0.0.1:{port}")),
            ("PARLEY_PROJECTIONS_HTTP_ADDR", format!("127.0.0.1:{projections_port}")),
            ("PARLEY_DATA_DIR", log_dir.join("data").display().to_string()),
            ("PARLEY_DATABASE_MAX_CONNECTIONS", "10".into()),
            // Stacks may share an S3 bucket: each keeps its media under its own prefix.
            ("PARLEY_MEDIA_PREFIX", format!("t{id}")),
            // Tests come from one address; quotas are tested on stacks that lower them.
            ("PARLEY_RATE_REGISTER_PER_IP", "100000/60".into()),
            ("PARLEY_RATE_LOGIN_PER_IP", "100000/60".into()),
            ("PARLEY_RATE_LOGIN_PER_ACCOUNT", "100000/60".into()),
            ("PARLEY_RATE_REFRESH_PER_IP", "100000/60".into()),
            ("PARLEY_LOG", "info,parley_api::realtime=debug".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut sfus = Vec::new();
        for index in 0..options.sfu_nodes {
            let (http, udp) = (free_port()?, free_udp_port()?);
            let node = SfuNodeProcess {
                child: None,
                node_id: format!("t{id}-sfu{index}"),
                url: format!("ws://127.0.0.1:{http}/rtc"),
                base: format!("http://127.0.0.1:{http}"),
                env: [
                    ("PARLEY_SFU_HTTP_ADDR".to_owned(), format!("127.0.0.1:{http}")),
                    ("PARLEY_SFU_UDP_ADDR".to_owned(), format!("127.0.0.1:{udp}")),
                ]
                .into_iter()
                .chain(options.sfu_node_env.get(&index).cloned().unwrap_or_default())
                .collect(),
            };
            sfus.push(node);
        }
        env.insert("PARLEY_NATS_SFU_NODES_BUCKET".into(), format!("t{id}_sfu_nodes"));
        if let Some(first) = sfus.first() {
            // Where the api sends clients while no node is in the directory.
            env.insert("PARLEY_SFU_URL".into(), first.url.clone());
            env.insert("PARLEY_SFU_JWKS_URL".into(), format!("http://127.0.0.1:{port}/.well-known/jwks.json"));
        }
        let sfu_base = sfus.first().map(|node| node.base.clone());
        env.extend(options.env);
        let pool = PgPoolOptions::new().max_connections(4).connect(&database_url).await?;
        let mut stack = Stack {
            id,
            base_url: format!("http://127.0.0.1:{port}"),
            projections_base: format!("http://127.0.0.1:{projections_port}"),
            database_url,
            pool,
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            stream_name,
            env,
            process_env: options.process_env,
            api: None,
            extra_apis: Vec::new(),
            projector: None,
            sfus,
            sfu_base,
            log_dir,
        };
        stack.start_api().await?;
        stack.start_projector()?;
        for index in 0..stack.sfus.len() {
            stack.start_sfu(index, &format!("sfu{index}.log")).await?;
        }
        Ok(stack)
    }

    /// Starts SFU node `index`; returns once it is ready and in the directory.
    async fn start_sfu(&mut self, index: usize, log: &str) -> Result<()> {
        let node = self.sfus.get(index).context("no such SFU node")?;
        let (base, node_id) = (node.base.clone(), node.node_id.clone());
        let mut env = node.env.clone();
        env.push(("PARLEY_SFU_NODE_ID".into(), node.node_id.clone()));
        env.push(("PARLEY_SFU_PUBLIC_URL".into(), node.url.clone()));
        let child = self.spawn_with("parley-sfu", &[], log, &env)?;
        if let Some(node) = self.sfus.get_mut(index) {
            node.child = Some(child);
        }
        self.wait_healthy("parley-sfu", &base, log).await?;
        // In the directory, so the next call is placed on it.
        let bucket = self.env.get("PARLEY_NATS_SFU_NODES_BUCKET").cloned().unwrap_or_default();
        let nats_url = self.env.get("NATS_URL").cloned().unwrap_or_else(nats_url);
        let credentials = self
            .process_env
            .get("parley-api")
            .and_then(|env| Some((env.get("NATS_USER")?.clone(), env.get("NATS_PASSWORD")?.clone())));
        let options = match credentials {
            Some((user, password)) => async_nats::ConnectOptions::with_user_and_password(user, password)
                .custom_inbox_prefix("_INBOX_parley-api"),
            None => async_nats::ConnectOptions::new(),
        };
        let nats = options.connect(&nats_url).await?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let jetstream = async_nats::jetstream::new(nats.clone());
            if let Ok(store) = jetstream.get_key_value(&bucket).await {
                if matches!(store.get(&node_id).await, Ok(Some(_))) {
                    // The api's watch hears of it within moments.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("SFU node {node_id} is not in the directory; see {}", self.log_dir.join(log).display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The SFU nodes: (node id, signaling URL) each.
    pub fn sfu_nodes(&self) -> Vec<(String, String)> {
        self.sfus.iter().map(|node| (node.node_id.clone(), node.url.clone())).collect()
    }

    /// SIGKILL for SFU node `index`: its sockets drop, its directory entry goes stale.
    pub async fn kill_sfu(&mut self, index: usize) -> Result<()> {
        if let Some(mut child) = self.sfus.get_mut(index).and_then(|node| node.child.take()) {
            child.kill().await?;
        }
        Ok(())
    }

    fn spawn(&self, binary_name: &str, args: &[&str], log_name: &str) -> Result<Child> {
        self.spawn_with(binary_name, args, log_name, &[])
    }

    /// `spawn` with `extra` variables over everything else.
    fn spawn_with(
        &self,
        binary_name: &str,
        args: &[&str],
        log_name: &str,
        extra: &[(String, String)],
    ) -> Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_dir.join(log_name))?;
        let child = Command::new(binary(binary_name)?)
            .args(args)
            .envs(&self.env)
            .envs(self.process_env.get(binary_name).into_iter().flatten())
            .envs(extra.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawning {binary_name}"))?;
        Ok(child)
    }

    pub async fn start_api(&mut self) -> Result<()> {
        self.api = Some(self.spawn("parley-api", &["serve"], "api.log")?);
        self.wait_healthy("parley-api", &self.base_url.clone(), "api.log").await
    }

    /// Starts another api process on the same database and NATS (a second replica); returns
    /// its base URL.
    /// Sets (or, with `None`, removes) a variable of the processes started from now on.
    pub fn set_env(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(value) => self.env.insert(name.to_owned(), value.to_owned()),
            None => self.env.remove(name),
        };
    }

    pub async fn start_extra_api(&mut self) -> Result<String> {
        let port = free_port()?;
        self.spawn_extra_api(port).await
    }

    async fn spawn_extra_api(&mut self, port: u16) -> Result<String> {
        let log = format!("api-{port}.log");
        let address = [("PARLEY_HTTP_ADDR".to_owned(), format!("127.0.0.1:{port}"))];
        let child = self.spawn_with("parley-api", &["serve"], &log, &address)?;
        self.extra_apis.push((child, port));
        let base = format!("http://127.0.0.1:{port}");
        self.wait_healthy("parley-api", &base, &log).await?;
        Ok(base)
    }

    /// The api replicas' process ids: the first is `base_url`'s, then the extra ones in the order
    /// they started.
    pub fn api_pids(&self) -> Vec<Option<u32>> {
        std::iter::once(self.api.as_ref().and_then(Child::id))
            .chain(self.extra_apis.iter().map(|(child, _)| child.id()))
            .collect()
    }

    /// SIGKILLs api replica `index` (as in `api_pids`) and starts it again on the same port.
    pub async fn kill_and_restart_api(&mut self, index: usize) -> Result<()> {
        if index == 0 {
            if let Some(mut child) = self.api.take() {
                child.kill().await?;
            }
            return self.start_api().await;
        }
        let (mut child, port) = self.extra_apis.remove(index - 1);
        child.kill().await?;
        self.spawn_extra_api(port).await?;
        // Keep the order `api_pids` promises.
        if let Some(restarted) = self.extra_apis.pop() {
            self.extra_apis.insert(index - 1, restarted);
        }
        Ok(())
    }

    /// Waits until `process`, serving at `base`, answers `/healthz` (its log: `log`).
    async fn wait_healthy(&self, process: &str, base: &str, log: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = self.http.get(format!("{base}/healthz")).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("{process} did not become healthy; see {}", self.log_dir.join(log).display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn start_projector(&mut self) -> Result<()> {
        self.projector = Some(self.spawn("parley-projections", &["run"], "projections.log")?);
        Ok(())
    }

    /// SIGKILL: no chance to finish what it was doing.
    /// Stops the SFU and starts it again; returns once it says it is ready.
    pub async fn restart_sfu(&mut self) -> Result<()> {
        self.kill_sfu(0).await?;
        self.start_sfu(0, "sfu0-restarted.log").await
    }

    pub async fn kill_projector(&mut self) -> Result<()> {
        if let Some(mut child) = self.projector.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Runs `parley-projections rebuild <projection>` to completion.
    pub async fn rebuild(&self, projection: &str) -> Result<()> {
        let status = self.spawn("parley-projections", &["rebuild", projection], "rebuild.log")?.wait().await?;
        if !status.success() {
            bail!("rebuild failed: {status}");
        }
        Ok(())
    }

    /// The api's data directory (local media live under `media/`).
    pub fn data_dir(&self) -> PathBuf {
        self.log_dir.join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<(u16, Value)> {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await?).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Result<(u16, Value)> {
        read(self.http.put(self.url(path)).bearer_auth(token).json(body).send().await?).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<(u16, Value)> {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.send().await?).await
    }

    /// Registers a user; returns the 201 body (`user`, `access_token`, `refresh_token`).
    pub async fn register(&self, name: &str, email: &str) -> Result<Value> {
        let (status, body) =
            self.post("/auth/register", None, &json!({"name": name, "email": email, "password": PASSWORD})).await?;
        if status != 201 {
            bail!("register {email}: {status} {body}");
        }
        Ok(body)
    }

    /// Waits until `check` returns true, polling; fails after `timeout`.
    pub async fn eventually<F, Fut>(&self, timeout: Duration, what: &str, mut check: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if check().await? {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The `users` read model, as comparable JSON rows ordered by id.
    pub async fn users_read_model(&self) -> Result<Vec<Value>> {
        let rows: Vec<(Value,)> = sqlx::query_as(
            "SELECT to_jsonb(u) FROM (SELECT id, name, email, status, avatar_media_id, created_at, updated_at \
             FROM users ORDER BY id) u",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

pub async fn read(response: reqwest::Response) -> Result<(u16, Value)> {
    let status = response.status().as_u16();
    let text = response.text().await?;
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Ok((status, body))
}

/// Asserts the documented error shape and returns the code.
pub fn error_code(body: &Value) -> Result<String> {
    let code = body["error"]["code"].as_str().context(format!("no error.code in {body}"))?;
    let message = body["error"]["message"].as_str().context(format!("no error.message in {body}"))?;
    if message.is_empty() {
        bail!("empty error message in {body}");
    }
    Ok(code.to_owned())
}

pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{}@example.org", Uuid::new_v4().simple())
}

/// A NATS server of the test's own (so it can be stopped and restarted), keeping its JetStream
/// store across restarts.
pub struct OwnNats {
    pub url: String,
    port: u16,
    store: PathBuf,
    config: Option<NatsConfig>,
    child: Option<Child>,
}

/// A configuration file (`-c`) and the variables it reads, instead of the plain command line.
struct NatsConfig {
    path: PathBuf,
    variables: Vec<(String, String)>,
}

impl OwnNats {
    pub async fn start() -> Result<Self> {
        Self::start_with(free_port()?, None).await
    }

    /// A server that lets in only the users of `k8s/base/nats/authorization.conf`, with these
    /// passwords (`PARLEY_NATS_API_PASSWORD`, ...).
    pub async fn start_authorized(passwords: &[(&str, &str)]) -> Result<Self> {
        let dir = state_dir().join("nats").join(format!("auth-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(repo_root().join("k8s/base/nats/authorization.conf"), dir.join("authorization.conf"))?;
        let port = free_port()?;
        let conf = format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\ninclude authorization.conf\n",
            dir.join("store").display()
        );
        std::fs::write(dir.join("nats.conf"), conf)?;
        let variables = passwords.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self::start_with(port, Some(NatsConfig { path: dir.join("nats.conf"), variables })).await
    }

    async fn start_with(port: u16, config: Option<NatsConfig>) -> Result<Self> {
        let store = state_dir().join("nats").join(Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&store)?;
        let mut nats = OwnNats { url: format!("nats://127.0.0.1:{port}"), port, store, config, child: None };
        nats.resume().await?;
        Ok(nats)
    }

    pub async fn resume(&mut self) -> Result<()> {
        let bin = std::env::var("PARLEY_NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let mut command = Command::new(bin);
        match &self.config {
            Some(config) => command.arg("-c").arg(&config.path).envs(config.variables.iter().cloned()),
            None => command.args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"]).arg(&self.store),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server (set PARLEY_NATS_SERVER_BIN)")?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    pub async fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }
}

/// A PostgreSQL server of the test's own (so it can be restarted), started and stopped with the
/// scripts' own functions (`scripts/lib.sh`).
pub struct OwnPostgres {
    pub admin_url: String,
    port: u16,
    dir: PathBuf,
}

impl OwnPostgres {
    pub async fn start() -> Result<Self> {
        let port = free_port()?;
        let dir = state_dir().join("postgres").join(Uuid::new_v4().simple().to_string());
        let postgres = OwnPostgres { admin_url: format!("postgres://parley@127.0.0.1:{port}/postgres"), port, dir };
        postgres.run("start_postgres").await?;
        Ok(postgres)
    }

    /// A fast shutdown (every connection dropped) and a start, as an operator's restart does.
    pub async fn restart(&self) -> Result<()> {
        self.run("stop_postgres").await?;
        self.run("start_postgres").await
    }

    async fn run(&self, function: &str) -> Result<()> {
        let lib = repo_root().join("scripts/lib.sh");
        let status = Command::new("bash")
            .arg("-c")
            .arg(format!("source \"$0\" && PARLEY_PG_FSYNC=off {function} \"$1\" \"$2\""))
            .arg(&lib)
            .arg(&self.dir)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .status()
            .await?;
        anyhow::ensure!(status.success(), "{function} failed for {}", self.dir.display());
        Ok(())
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let lib = repo_root().join("scripts/lib.sh");
        let _ = std::process::Command::new("bash")
            .arg("-c")
            .arg("source \"$0\" && stop_postgres \"$1\"")
            .arg(&lib)
            .arg(&self.dir)
            .stdin(Stdio::null())
            .status();
    }
}

/// A WebSocket client of `GET /ws`.
pub struct Socket {
    inner: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Socket {
    pub async fn connect(base_url: &str, token: &str, cursor: Option<&str>) -> Result<Self> {
        let mut url = format!("{}/ws?token={token}", base_url.replacen("http://", "ws://", 1));
        if let Some(cursor) = cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let (inner, _) = tokio_tungstenite::connect_async_with_config(url, Some(Self::config()), false).await?;
        Ok(Self { inner })
    }

    /// tungstenite zero-fills its whole read buffer (128 KiB by default) before every read; frames
    /// here are small, and the messaging benchmark's listeners had spent 6 % of the load
    /// generator's CPU in that `memset`.
    fn config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
        tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(8 * 1024)
    }

    /// Connects as a browser that cannot set headers would: the token in
    /// `Sec-WebSocket-Protocol: bearer, <token>`, none in the URL. Returns the protocol the server
    /// selected with the socket.
    pub async fn connect_by_protocol(base_url: &str, token: &str) -> Result<(Self, Option<String>)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("{}/ws", base_url.replacen("http://", "ws://", 1)).into_client_request()?;
        request.headers_mut().insert("sec-websocket-protocol", format!("bearer, {token}").parse()?);
        let (inner, response) =
            tokio_tungstenite::connect_async_with_config(request, Some(Self::config()), false).await?;
        let selected =
            response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok((Self { inner }, selected))
    }

    pub async fn send(&mut self, frame: &Value) -> Result<()> {
        use futures::SinkExt;
        self.inner.send(tokio_tungstenite::tungstenite::Message::Text(frame.to_string().into())).await?;
        Ok(())
    }

    /// The next JSON frame, or `None` if none arrives within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Value>> {
        match self.next_text(timeout).await? {
            Some(text) => Ok(Some(serde_json::from_str(&text)?)),
            None => Ok(None),
        }
    }

    /// The next text frame as sent, or `None` if none arrives within `timeout`.
    pub async fn next_text(&mut self, timeout: Duration) -> Result<Option<String>> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("socket closed"),
                Ok(Some(message)) => message?,
            };
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                return Ok(Some(text.as_str().to_owned()));
            }
        }
    }

    /// Waits for the server to close the socket, skipping frames: its close code and reason, or
    /// `None` if it stays open for `timeout`.
    pub async fn closed(&mut self, timeout: Duration) -> Result<Option<(u16, String)>> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Ok(Some((1006, "closed without a close frame".into()))),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Ok(Some(
                        frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new())),
                    ))
                }
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(error))) => return Ok(Some((1006, error.to_string()))),
            }
        }
    }

    /// The next frame of type `kind`, skipping others; fails after `timeout`.
    pub async fn expect(&mut self, kind: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        while let Some(remaining) = deadline.checked_duration_since(Instant::now()) {
            match self.next(remaining).await? {
                Some(frame) if frame["type"] == kind => return Ok(frame),
                Some(_) => continue,
                None => break,
            }
        }
        bail!("no {kind} frame within {timeout:?}")
    }
}
