//! NATS with `k8s/base/nats/authorization.conf`: the whole stack works with a user per service,
//! and each user is refused what its service must not do (read frames, commit events, read
//! another service's deliveries); nobody gets in without a password.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Result};
use parley_tests::{call_everyone, direct, member, run_peer, send, OwnNats, Socket, Stack, StackOptions};

const PASSWORDS: [(&str, &str, &str); 3] = [
    ("parley-api", "PARLEY_NATS_API_PASSWORD", "api-secret-1"),
    ("parley-projections", "PARLEY_NATS_PROJECTIONS_PASSWORD", "projections-secret-2"),
    ("parley-sfu", "PARLEY_NATS_SFU_PASSWORD", "sfu-secret-3"),
];

async fn authorized_nats() -> Result<OwnNats> {
    let variables: Vec<(&str, &str)> = PASSWORDS.iter().map(|(_, variable, password)| (*variable, *password)).collect();
    OwnNats::start_authorized(&variables).await
}

/// A connection as `user` that collects the server's errors (permission violations).
struct Probe {
    client: async_nats::Client,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Probe {
    async fn connect(url: &str, user: &str, password: &str) -> Result<Self> {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&errors);
        let client = async_nats::ConnectOptions::with_user_and_password(user.to_owned(), password.to_owned())
            .custom_inbox_prefix(format!("_INBOX_{user}"))
            .event_callback(move |event| {
                let seen = Arc::clone(&seen);
                async move {
                    if let async_nats::Event::ServerError(error) = event {
                        seen.lock().map(|mut e| e.push(error.to_string())).unwrap_or_default();
                    }
                }
            })
            .connect(url)
            .await?;
        Ok(Self { client, errors })
    }

    /// The violations the server reported for what `act` did.
    async fn refusals<F, Fut>(&self, act: F) -> Result<Vec<String>>
    where
        F: FnOnce(async_nats::Client) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        self.errors.lock().map(|mut e| e.clear()).unwrap_or_default();
        act(self.client.clone()).await?;
        self.client.flush().await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(self.errors.lock().map(|e| e.clone()).unwrap_or_default())
    }
}

async fn subscribe(client: async_nats::Client, subject: &'static str) -> Result<()> {
    // Kept open until the server had time to answer.
    let subscription = client.subscribe(subject).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(subscription);
    Ok(())
}

async fn publish(client: async_nats::Client, subject: &'static str) -> Result<()> {
    client.publish(subject, "forged".into()).await?;
    Ok(())
}

#[tokio::test]
async fn every_service_gets_only_its_subjects_and_nobody_gets_in_without_a_password() -> Result<()> {
    let nats = authorized_nats().await?;
    let mut options = StackOptions::default().with_sfu();
    options.nats_url = Some(nats.url.clone());
    // The subjects the authorization file names: the defaults.
    for (key, value) in [
        ("PARLEY_NATS_STREAM", "PARLEY_EVENTS"),
        ("PARLEY_NATS_SUBJECT_PREFIX", "parley.events"),
        ("PARLEY_NATS_REALTIME_PREFIX", "parley.rt"),
        ("PARLEY_NATS_CONSUMER_PREFIX", "parley"),
        ("PARLEY_NATS_RATE_LIMIT_BUCKET", "parley_rate_limits"),
        ("PARLEY_NATS_SFU_NODES_BUCKET", "parley_sfu_nodes"),
    ] {
        options = options.env(key, value);
    }
    for (user, _, password) in PASSWORDS {
        options = options.process_env(user, "NATS_USER", user).process_env(user, "NATS_PASSWORD", password);
    }
    let stack = Stack::start_with(options).await?;

    // Everything works with those users: a message reaches the other side's socket (relay,
    // projector, frames), and a call connects through the SFU (it follows the stream and reports).
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let mut socket = Socket::connect(&stack.base_url, &bob.token, None).await?;
    let (status, sent) = send(&stack, &chat, &ada, "m1", "hello").await?;
    ensure!(status == 201, "send: {status} {sent}");
    socket.expect("message.created", Duration::from_secs(10)).await?;
    let access = call_everyone(&stack, &chat, "audio", &ada, &[&bob]).await?;
    // The SFU reported itself to the directory under its user: the call was placed on it.
    ensure!(parley_tests::jwt_claims(&access[0].1)?["node"].is_string(), "the call was placed on no SFU node");
    let (first, second) = tokio::join!(
        run_peer(&access[0].0, &access[0].1, &["--seconds", "3"]),
        run_peer(&access[1].0, &access[1].1, &["--seconds", "3"]),
    );
    for summary in [first?, second?] {
        assert_eq!(summary["answered"], true, "{summary}");
        assert!(!parley_tests::decoded(&summary, "audio", 20).is_empty(), "no audio came through: {summary}");
        // Whoever leaves first ends a direct call: the other may hear so as its own time is up.
        let close = &summary["close"];
        assert!(close.is_null() || close["reason"] == "the call has ended", "{summary}");
    }

    // Nobody without a password, or with a wrong one.
    ensure!(async_nats::connect(&nats.url).await.is_err(), "an anonymous client got in");
    let wrong = async_nats::ConnectOptions::with_user_and_password("parley-sfu".into(), "guess".into());
    ensure!(wrong.connect(&nats.url).await.is_err(), "a wrong password got in");

    let [(_, _, api_password), (_, _, projections_password), (_, _, sfu_password)] = PASSWORDS;
    let sfu = Probe::connect(&nats.url, "parley-sfu", sfu_password).await?;
    let projections = Probe::connect(&nats.url, "parley-projections", projections_password).await?;
    let api = Probe::connect(&nats.url, "parley-api", api_password).await?;
    let refused = |errors: Vec<String>, what: &str| {
        assert!(errors.iter().any(|e| e.contains("Permissions Violation")), "{what} was not refused: {errors:?}");
    };
    refused(sfu.refusals(|c| subscribe(c, "parley.rt.>")).await?, "the SFU reading frames");
    refused(sfu.refusals(|c| publish(c, "parley.events.Chat.forged")).await?, "the SFU committing an event");
    refused(sfu.refusals(|c| publish(c, "parley.rt.user.forged")).await?, "the SFU forging a frame");
    // A resync makes every socket on every replica read its feed: the SFU may not ask for one.
    refused(sfu.refusals(|c| publish(c, "parley.rt.resync")).await?, "the SFU asking every socket to resync");
    refused(sfu.refusals(|c| subscribe(c, "_INBOX_parley-api.>")).await?, "the SFU reading the api's deliveries");
    refused(sfu.refusals(|c| publish(c, "$JS.API.STREAM.DELETE.PARLEY_EVENTS")).await?, "the SFU deleting the stream");
    refused(projections.refusals(|c| publish(c, "parley.events.Chat.forged")).await?, "the projector committing");
    refused(projections.refusals(|c| subscribe(c, "parley.rt.>")).await?, "the projector reading frames");
    refused(sfu.refusals(|c| publish(c, "$KV.parley_rate_limits.x")).await?, "the SFU refilling a rate limit");
    refused(projections.refusals(|c| publish(c, "$KV.parley_rate_limits.x")).await?, "the projector refilling a limit");
    // What a service does use raises nothing (so the checks above can tell).
    assert_eq!(sfu.refusals(|c| subscribe(c, "_INBOX_parley-sfu.probe")).await?, Vec::<String>::new());
    assert_eq!(api.refusals(|c| subscribe(c, "parley.rt.>")).await?, Vec::<String>::new());
    Ok(())
}
