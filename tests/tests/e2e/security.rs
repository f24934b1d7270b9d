//! What an attacker tried against the running stack, and the refusals that now hold: access that
//! outlives its right (revoked sessions, expired tokens), abuse of the rate limits and of the
//! metrics, typing floods.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use parley_tests::{error_code, text, unique_email, OwnNats, Socket, Stack, StackOptions, PASSWORD};
use serde_json::{json, Value};

use parley_tests::{group, member, send, Member};

const WAIT: Duration = Duration::from_secs(10);
/// Revocation must reach every replica within this.
const REVOCATION_DEADLINE: Duration = Duration::from_secs(1);

async fn login(stack: &Stack, email: &str) -> Result<Value> {
    let (status, body) = stack.post("/auth/login", None, &json!({"email": email, "password": PASSWORD})).await?;
    ensure!(status == 200, "login: {status} {body}");
    Ok(body)
}

async fn logout(base_url: &str, stack: &Stack, token: &str) -> Result<u16> {
    let response = stack.http.post(format!("{base_url}/auth/logout")).bearer_auth(token).send().await?;
    Ok(response.status().as_u16())
}

async fn profile_status(base_url: &str, stack: &Stack, token: &str, user_id: &str) -> Result<u16> {
    let response = stack.http.get(format!("{base_url}/users/{user_id}")).bearer_auth(token).send().await?;
    Ok(response.status().as_u16())
}

/// How long until `base_url` refuses `token` (polled every 20 ms, up to `WAIT`).
async fn refused_after(stack: &Stack, base_url: &str, token: &str, user_id: &str, since: Instant) -> Result<Duration> {
    while since.elapsed() < WAIT {
        if profile_status(base_url, stack, token, user_id).await? == 401 {
            return Ok(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("{base_url} still accepts the token after {WAIT:?}")
}

#[tokio::test]
async fn logout_ends_the_sessions_sockets_and_access_tokens_on_every_replica() -> Result<()> {
    let mut stack = Stack::start().await?;
    let second = stack.start_extra_api().await?;
    let email = unique_email("ada");
    let registered = stack.register("Ada", &email).await?;
    let ada = Member { id: text(&registered["user"]["id"])?, token: text(&registered["access_token"])? };
    let bob = member(&stack, "bob").await?;
    let chat = group(&stack, &bob, &[&ada]).await?;
    // A second session of Ada's (another device) must survive her logging out of the first.
    let other_session = login(&stack, &email).await?;
    let other_token = text(&other_session["access_token"])?;

    // Ada listens on both replicas with the first session, and on the second with the other.
    let mut on_first = Socket::connect(&stack.base_url, &ada.token, None).await?;
    let mut on_second = Socket::connect(&second, &ada.token, None).await?;
    let mut other_device = Socket::connect(&second, &other_token, None).await?;
    send(&stack, &chat, &bob, "m1", "before").await?;
    on_first.expect("message.created", WAIT).await?;
    on_second.expect("message.created", WAIT).await?;
    other_device.expect("message.created", WAIT).await?;

    let logged_out = Instant::now();
    assert_eq!(logout(&stack.base_url, &stack, &ada.token).await?, 204);
    let closed = on_second.closed(REVOCATION_DEADLINE).await?;
    assert_eq!(closed.map(|(code, _)| code), Some(4001), "the other replica's socket closes within a second");
    assert_eq!(on_first.closed(REVOCATION_DEADLINE).await?.map(|(code, _)| code), Some(4001));
    let on_second_replica = refused_after(&stack, &second, &ada.token, &ada.id, logged_out).await?;
    assert!(on_second_replica < REVOCATION_DEADLINE, "access token still worked for {on_second_replica:?}");
    assert_eq!(profile_status(&stack.base_url, &stack, &ada.token, &ada.id).await?, 401);
    // Reconnecting with the revoked token is refused before the upgrade.
    assert!(Socket::connect(&second, &ada.token, None).await.is_err());

    // The other session goes on.
    send(&stack, &chat, &bob, "m2", "after").await?;
    other_device.expect("message.created", WAIT).await?;
    assert_eq!(profile_status(&second, &stack, &other_token, &ada.id).await?, 200);

    // A replica started after the logout knows it too (it reads recent revocations back).
    let third = stack.start_extra_api().await?;
    assert_eq!(profile_status(&third, &stack, &ada.token, &ada.id).await?, 401);
    assert_eq!(profile_status(&third, &stack, &other_token, &ada.id).await?, 200);

    // The revoked token cannot renew a live socket either.
    other_device.send(&json!({"type": "auth", "token": ada.token})).await?;
    assert_eq!(other_device.expect("error", WAIT).await?["data"]["code"], "invalid_token");
    assert_eq!(other_device.closed(WAIT).await?.map(|(code, _)| code), Some(4001));
    Ok(())
}

#[tokio::test]
async fn refresh_token_reuse_ends_the_sessions_sockets_but_a_made_up_secret_ends_nothing() -> Result<()> {
    let mut stack = Stack::start().await?;
    let second = stack.start_extra_api().await?;
    let email = unique_email("ada");
    let registered = stack.register("Ada", &email).await?;
    let user_id = text(&registered["user"]["id"])?;
    let access = text(&registered["access_token"])?;
    let first_refresh = text(&registered["refresh_token"])?;
    let mut socket = Socket::connect(&second, &access, None).await?;

    // An attacker who read the session id (it is in every access token) guesses a secret.
    let session_id = first_refresh.split('.').next().unwrap_or_default();
    let made_up = format!("{session_id}.{}", "A".repeat(43));
    let (status, body) = stack.post("/auth/refresh", None, &json!({"refresh_token": made_up})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (401, "unauthorized"));
    assert_eq!(socket.closed(Duration::from_millis(500)).await?, None, "the victim's socket stays open");
    let (status, rotated) = stack.post("/auth/refresh", None, &json!({"refresh_token": first_refresh})).await?;
    assert_eq!(status, 200, "the victim's real token still works: {rotated}");

    // A token that really was issued and already rotated is reuse: the session ends everywhere.
    let reused_at = Instant::now();
    let (status, _) = stack.post("/auth/refresh", None, &json!({"refresh_token": first_refresh})).await?;
    assert_eq!(status, 401);
    assert_eq!(socket.closed(REVOCATION_DEADLINE).await?.map(|(code, _)| code), Some(4001));
    let newest = &*text(&rotated["access_token"])?;
    let refused = refused_after(&stack, &second, newest, &user_id, reused_at).await?;
    assert!(refused < REVOCATION_DEADLINE, "the rotated access token still worked for {refused:?}");
    Ok(())
}

#[tokio::test]
async fn a_socket_closes_when_its_token_expires_unless_the_client_reauthenticates() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().env("PARLEY_ACCESS_TOKEN_TTL_SECS", "3")).await?;
    let email = unique_email("ada");
    let registered = stack.register("Ada", &email).await?;
    let access = text(&registered["access_token"])?;
    let refresh = text(&registered["refresh_token"])?;
    let eve = member(&stack, "eve").await?;

    let mut lapsing = Socket::connect(&stack.base_url, &access, None).await?;
    let mut renewed = Socket::connect(&stack.base_url, &access, None).await?;
    let mut impostor = Socket::connect(&stack.base_url, &access, None).await?;

    // Someone else's token does not take over a socket.
    impostor.send(&json!({"type": "auth", "token": eve.token})).await?;
    assert_eq!(impostor.expect("error", WAIT).await?["data"]["code"], "invalid_token");
    assert_eq!(impostor.closed(WAIT).await?.map(|(code, _)| code), Some(4001));

    let (status, fresh) = stack.post("/auth/refresh", None, &json!({"refresh_token": refresh})).await?;
    ensure!(status == 200, "refresh: {fresh}");
    renewed.send(&json!({"type": "auth", "token": fresh["access_token"]})).await?;
    let ok = renewed.expect("auth.ok", WAIT).await?;
    assert!(ok["data"]["expires_at"].as_str().is_some(), "{ok}");

    // Pings keep a socket from idling out, not alive past its token.
    let started = Instant::now();
    let mut lapsed = None;
    while lapsed.is_none() && started.elapsed() < Duration::from_secs(6) {
        lapsing.send(&json!({"type": "ping"})).await?;
        lapsed = lapsing.closed(Duration::from_millis(300)).await?;
    }
    let (code, reason) = lapsed.unwrap_or_default();
    assert_eq!(code, 4001, "closed when the token expired: {reason}");
    // The renewed one is still open (its new token was issued after the first).
    renewed.send(&json!({"type": "ping"})).await?;
    renewed.expect("pong", WAIT).await?;
    Ok(())
}

#[tokio::test]
async fn login_refuses_oversized_emails_before_they_reach_a_limiter() -> Result<()> {
    let stack = Stack::start().await?;
    let long_local = format!("{}@example.com", "a".repeat(243));
    assert_eq!(long_local.len(), 255);
    for email in [long_local, format!("{}@example.com", "b".repeat(1_000_000))] {
        let (status, body) = stack.post("/auth/login", None, &json!({"email": email, "password": PASSWORD})).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_email"));
    }
    Ok(())
}

#[tokio::test]
async fn a_flood_of_made_up_emails_does_not_reset_an_accounts_login_limit() -> Result<()> {
    // A small table, so that the flood that filled 100,000 buckets in the review fills it here.
    let options = StackOptions::default()
        .env("PARLEY_RATE_LIMIT_MAX_KEYS", "50")
        .env("PARLEY_RATE_LOGIN_PER_IP", "1000000/1")
        .env("PARLEY_RATE_LOGIN_PER_ACCOUNT", "3/600");
    let stack = Stack::start_with(options).await?;
    let victim = unique_email("victim");
    stack.register("Victim", &victim).await?;
    let guess = |email: String| {
        let request = stack.http.post(stack.url("/auth/login")).json(&json!({"email": email, "password": "guess"}));
        async move { Ok::<u16, anyhow::Error>(request.send().await?.status().as_u16()) }
    };
    for _ in 0..3 {
        assert_eq!(guess(victim.clone()).await?, 401);
    }
    assert_eq!(guess(victim.clone()).await?, 429, "the account's limit is reached");
    // The attacker makes up twice as many accounts as the table holds, then guesses again.
    let mut flood = Vec::new();
    for n in 0..100 {
        flood.push(guess(format!("made-up-{n}@example.com")).await?);
    }
    assert!(flood.contains(&429), "the full table refuses new keys rather than forgetting old ones");
    assert_eq!(guess(victim.clone()).await?, 429, "the victim's limit survived the flood");
    Ok(())
}

/// A wrong-password login for `email` at the replica `base_url`: its status.
async fn guess_at(stack: &Stack, base_url: &str, email: &str) -> Result<u16> {
    let request = stack.http.post(format!("{base_url}/auth/login")).json(&json!({"email": email, "password": "guess"}));
    Ok(request.send().await?.status().as_u16())
}

#[tokio::test]
async fn login_limits_hold_across_replicas_and_per_replica_while_nats_is_down() -> Result<()> {
    let mut nats = OwnNats::start().await?;
    let mut options = StackOptions::default().env("PARLEY_RATE_LOGIN_PER_ACCOUNT", "4/600");
    options.nats_url = Some(nats.url.clone());
    let mut stack = Stack::start_with(options).await?;
    let second = stack.start_extra_api().await?;
    let (victim, other) = (unique_email("victim"), unique_email("other"));
    stack.register("Victim", &victim).await?;
    stack.register("Other", &other).await?;

    // Guesses spread over both replicas draw from one quota of 4, not 4 per replica.
    let mut statuses = Vec::new();
    for n in 0..8 {
        let replica = if n % 2 == 0 { stack.base_url.clone() } else { second.clone() };
        statuses.push(guess_at(&stack, &replica, &victim).await?);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429], "one quota across replicas");
    // A replica started afterwards knows the account's quota is spent.
    let third = stack.start_extra_api().await?;
    assert_eq!(guess_at(&stack, &third, &victim).await?, 429, "a new replica reads the shared bucket");

    // A burst of concurrent guesses gets the quota once too: no replica gives up on the shared
    // bucket under its own requests' contention and falls back to a quota of its own.
    let burst = unique_email("burst");
    stack.register("Burst", &burst).await?;
    let guesses = (0..24).map(|n| {
        let replica = if n % 2 == 0 { stack.base_url.clone() } else { second.clone() };
        let (stack, burst) = (&stack, &burst);
        async move { guess_at(stack, &replica, burst).await }
    });
    let statuses = futures::future::try_join_all(guesses).await?;
    let allowed = statuses.iter().filter(|status| **status != 429).count();
    assert_eq!(allowed, 4, "a burst of 24 guesses over two replicas: {statuses:?}");

    // Without NATS every replica answers at once from its own limiter: still limited, never a
    // hang or an error.
    nats.stop().await?;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(guess_at(&stack, &second, &other).await?);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 429], "limited per replica while NATS is down");
    assert!(started.elapsed() < Duration::from_secs(10), "guesses took {:?} without NATS", started.elapsed());
    nats.resume().await?;
    Ok(())
}

#[tokio::test]
async fn per_ip_limits_take_the_address_the_trusted_proxy_saw() -> Result<()> {
    let options = StackOptions::default()
        .env("PARLEY_TRUSTED_PROXY_HOPS", "1")
        .env("PARLEY_RATE_LOGIN_PER_IP", "3/600")
        .env("PARLEY_RATE_LOGIN_PER_ACCOUNT", "100/600");
    let stack = Stack::start_with(options).await?;
    let attempt = |forwarded: String| {
        let request = stack
            .http
            .post(stack.url("/auth/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": unique_email("nobody"), "password": "wrong password"}));
        async move { Ok::<u16, anyhow::Error>(request.send().await?.status().as_u16()) }
    };
    // The client writes whatever it likes on the left; the proxy appends the address it saw.
    let mut statuses = Vec::new();
    for n in 0..5 {
        statuses.push(attempt(format!("198.51.100.{n}, 203.0.113.7")).await?);
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "a forged left entry does not buy a new quota");
    // Another client behind the same proxy has its own quota.
    assert_eq!(attempt("198.51.100.1, 203.0.113.8".into()).await?, 401);
    Ok(())
}

#[tokio::test]
async fn made_up_http_methods_share_one_metrics_label() -> Result<()> {
    let stack = Stack::start().await?;
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("X{n}METHOD").as_bytes())?;
        let response = stack.http.request(method, stack.url("/healthz")).send().await?;
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    stack.get("/healthz", None).await?;
    let metrics = stack.http.get(stack.url("/metrics")).send().await?.text().await?;
    assert!(!metrics.contains("METHOD"), "made-up methods became labels");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(metrics.contains("method=\"GET\""), "{metrics}");
    Ok(())
}

#[tokio::test]
async fn typing_floods_are_throttled_per_user_and_chat() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let mut adas = Socket::connect(&stack.base_url, &ada.token, None).await?;
    let mut bobs = Socket::connect(&stack.base_url, &bob.token, None).await?;
    // A pong comes from the session loop, which starts once the socket listens for frames.
    bobs.send(&json!({"type": "ping"})).await?;
    bobs.expect("pong", WAIT).await?;
    for _ in 0..200 {
        adas.send(&json!({"type": "typing", "chat_id": chat})).await?;
    }
    let mut typing = 0;
    while let Some(frame) = bobs.next(Duration::from_millis(1500)).await? {
        if frame["type"] == "typing" {
            typing += 1;
        }
    }
    assert_eq!(typing, 1, "one typing frame per chat per 2 s reaches the others");
    // The flood was dropped silently, and the next interval lets one through again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    adas.send(&json!({"type": "typing", "chat_id": chat})).await?;
    assert_eq!(bobs.expect("typing", WAIT).await?["data"]["user_id"].as_str(), Some(ada.id.as_str()));
    adas.send(&json!({"type": "ping"})).await?;
    adas.expect("pong", WAIT).await?;
    Ok(())
}
