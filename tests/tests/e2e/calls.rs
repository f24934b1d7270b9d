use std::time::Duration;

use anyhow::Result;
use parley_tests::{error_code, jwt_claims, text, Socket, Stack, StackOptions};
use serde_json::{json, Value};

use parley_tests::{direct, group, member, Member};

const WAIT: Duration = Duration::from_secs(10);

async fn call(stack: &Stack, path: &str, who: &Member) -> Result<(u16, Value)> {
    stack.post(path, Some(&who.token), &json!(null)).await
}

/// An online member: a socket whose session (and presence) is known to be up.
async fn online(stack: &Stack, who: &Member) -> Result<Socket> {
    let mut socket = Socket::connect(&stack.base_url, &who.token, None).await?;
    socket.send(&json!({"type": "ping"})).await?;
    socket.expect("pong", WAIT).await?;
    Ok(socket)
}

fn state_of(call: &Value, user: &Member) -> String {
    call["participants"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["user_id"] == user.id.as_str()))
        .and_then(|p| p["state"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Waits for a `call.updated` frame of `change`.
async fn expect_change(socket: &mut Socket, change: &str) -> Result<Value> {
    loop {
        let frame = socket.expect("call.updated", WAIT).await?;
        if frame["data"]["change"] == change {
            return Ok(frame);
        }
    }
}

#[tokio::test]
async fn a_direct_call_rings_is_answered_and_hung_up() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let (mut adas, mut bobs) = (online(&stack, &ada).await?, online(&stack, &bob).await?);

    let (status, started) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    assert_eq!(status, 201, "{started}");
    let call_id = text(&started["id"])?;
    assert_eq!((started["status"].as_str(), started["kind"].as_str()), (Some("ringing"), Some("video")));
    assert_eq!((state_of(&started, &ada), state_of(&started, &bob)), ("joined".into(), "ringing".into()));
    assert_eq!(started["sfu"]["url"], "ws://127.0.0.1:8081/rtc");
    let token = jwt_claims(&text(&started["sfu"]["token"])?)?;
    assert_eq!((token["sub"].as_str(), token["call"].as_str()), (Some(ada.id.as_str()), Some(call_id.as_str())));
    assert_eq!(token["aud"], "parley-sfu");
    assert!(token["exp"].as_i64().unwrap_or_default() - token["iat"].as_i64().unwrap_or_default() <= 60);

    let ringing = bobs.expect("call.ringing", WAIT).await?;
    assert_eq!(
        (ringing["data"]["call_id"].as_str(), ringing["data"]["chat_id"].as_str()),
        (Some(call_id.as_str()), Some(chat.as_str()))
    );
    assert_eq!(ringing["data"]["initiator_id"], ada.id.as_str());

    let (status, accepted) = call(&stack, &format!("/calls/{call_id}/accept"), &bob).await?;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["call"]["status"], "active");
    assert_eq!(jwt_claims(accepted["sfu"]["token"].as_str().unwrap_or_default())?["sub"], bob.id.as_str());
    let frame = expect_change(&mut adas, "accepted").await?;
    assert_eq!(frame["data"]["user_id"], bob.id.as_str());

    let (status, ended) = call(&stack, &format!("/calls/{call_id}/end"), &bob).await?;
    assert_eq!((status, ended["status"].as_str()), (200, Some("ended")));
    assert!(ended["ended_at"].is_string());
    let frame = expect_change(&mut adas, "ended").await?;
    assert_eq!(frame["data"]["status"], "ended");
    let (_, seen) = stack.get(&format!("/calls/{call_id}"), Some(&ada.token)).await?;
    assert_eq!(seen["status"], "ended");

    // The call is over for good; the chat takes a new one.
    let (status, body) = call(&stack, &format!("/calls/{call_id}/accept"), &bob).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "call_over"));
    let (status, next) = stack.post("/calls", Some(&bob.token), &json!({"chat_id": chat, "kind": "audio"})).await?;
    assert_eq!(status, 201);
    assert_ne!(next["id"].as_str(), Some(call_id.as_str()));
    Ok(())
}

#[tokio::test]
async fn a_declined_call_is_rejected_and_a_chat_has_one_live_call() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let mut adas = online(&stack, &ada).await?;

    let (_, first) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "audio"})).await?;
    let call_id = text(&first["id"])?;
    // Bob calling back while Ada's call rings joins it instead of ringing twice.
    let (status, joined) = stack.post("/calls", Some(&bob.token), &json!({"chat_id": chat, "kind": "audio"})).await?;
    assert_eq!((status, joined["id"].as_str()), (200, Some(call_id.as_str())));
    assert_eq!((joined["status"].as_str(), state_of(&joined, &bob)), (Some("active"), "joined".into()));
    let (status, ended) = call(&stack, &format!("/calls/{call_id}/end"), &ada).await?;
    assert_eq!((status, ended["status"].as_str()), (200, Some("ended")));

    let (_, second) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    let second_id = text(&second["id"])?;
    let (status, rejected) = call(&stack, &format!("/calls/{second_id}/reject"), &bob).await?;
    assert_eq!((status, rejected["status"].as_str()), (200, Some("rejected")));
    assert_eq!(state_of(&rejected, &bob), "rejected");
    loop {
        let frame = expect_change(&mut adas, "ended").await?;
        if frame["data"]["call_id"] == second_id.as_str() {
            assert_eq!(frame["data"]["status"], "rejected");
            break;
        }
    }
    // Only the one being called may decline; hanging up a call you are not in is refused.
    let (status, body) = call(&stack, &format!("/calls/{second_id}/reject"), &ada).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "call_over"));
    Ok(())
}

#[tokio::test]
async fn members_starting_a_call_at_the_same_moment_all_land_in_one() -> Result<()> {
    let stack = Stack::start().await?;
    let mut people = Vec::new();
    for name in ["ada", "bob", "cy", "dee", "eve"] {
        people.push(member(&stack, name).await?);
    }
    let others: Vec<&Member> = people[1..].iter().collect();
    let chat = group(&stack, &people[0], &others).await?;
    // The one-live-call lookup refuses all but one `CallStarted`; the others join that call.
    let body = json!({"chat_id": chat, "kind": "audio"});
    let starts = people.iter().map(|who| stack.post("/calls", Some(&who.token), &body));
    let mut statuses = Vec::new();
    let mut call_ids = std::collections::BTreeSet::new();
    for answer in futures::future::join_all(starts).await {
        let (status, body) = answer?;
        statuses.push(status);
        call_ids.insert(body["id"].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("{status}: {body}"))?);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 201]);
    assert_eq!(call_ids.len(), 1, "{call_ids:?}");
    Ok(())
}

#[tokio::test]
async fn an_unanswered_call_is_missed_and_both_notifications_wait_for_the_offline_callee() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().env("PARLEY_CALL_RING_TIMEOUT_SECS", "1")).await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let (_, started) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    let call_id = text(&started["id"])?;
    stack
        .eventually(WAIT, "the call to be missed", || async {
            Ok(stack.get(&format!("/calls/{call_id}"), Some(&ada.token)).await?.1["status"] == "missed")
        })
        .await?;
    stack
        .eventually(WAIT, "Bob's call notifications", || async {
            let (_, page) = stack.get("/notifications", Some(&bob.token)).await?;
            let kinds: Vec<&str> =
                page["items"].as_array().into_iter().flatten().filter_map(|n| n["kind"].as_str()).collect();
            Ok(kinds == ["missed_call", "incoming_call"])
        })
        .await?;
    let (_, adas) = stack.get("/notifications", Some(&ada.token)).await?;
    assert_eq!(adas["items"], json!([]));
    Ok(())
}

#[tokio::test]
async fn a_group_call_goes_on_until_its_last_participant_leaves() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let (_, started) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    let call_id = text(&started["id"])?;
    let path = |action: &str| format!("/calls/{call_id}/{action}");

    let (_, view) = call(&stack, &path("reject"), &bob).await?;
    assert_eq!((view["status"].as_str(), state_of(&view, &bob)), (Some("ringing"), "rejected".into()));
    let (_, joined) = call(&stack, &path("accept"), &cyd).await?;
    assert_eq!(joined["call"]["status"], "active");
    // Bob changes his mind and joins the call under way.
    let (status, joined) = call(&stack, &path("accept"), &bob).await?;
    assert_eq!((status, state_of(&joined["call"], &bob)), (200, "joined".into()));
    for who in [&ada, &bob] {
        let (_, view) = call(&stack, &path("end"), who).await?;
        assert_eq!((view["status"].as_str(), state_of(&view, who)), (Some("active"), "left".into()));
    }
    let (_, view) = call(&stack, &path("end"), &cyd).await?;
    assert_eq!(view["status"], "ended");
    let (status, body) = call(&stack, &path("end"), &cyd).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (409, "call_over"));
    Ok(())
}

#[tokio::test]
async fn people_outside_the_chat_can_neither_see_nor_join_its_calls() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, eve) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "eve").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let mut eves = online(&stack, &eve).await?;
    let (_, started) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    let call_id = text(&started["id"])?;

    let (status, body) = stack.post("/calls", Some(&eve.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"));
    let (status, body) = stack.get(&format!("/calls/{call_id}"), Some(&eve.token)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"));
    for action in ["accept", "reject", "end"] {
        let (status, body) = call(&stack, &format!("/calls/{call_id}/{action}"), &eve).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "{action}");
    }
    // A call that does not exist looks the same.
    let (status, _) = stack.get(&format!("/calls/{}", uuid::Uuid::now_v7()), Some(&ada.token)).await?;
    assert_eq!(status, 404);
    // Bob's accept reaches Ada's frames, never Eve's socket.
    let (status, _) = call(&stack, &format!("/calls/{call_id}/accept"), &bob).await?;
    assert_eq!(status, 200);
    eves.send(&json!({"type": "ping"})).await?;
    let frame = eves.next(WAIT).await?.unwrap_or_default();
    assert_eq!(frame["type"], "pong", "Eve got {frame}");
    Ok(())
}

#[tokio::test]
async fn a_chats_call_under_way_is_there_for_its_members_to_join_and_no_one_else() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd, eve) = (
        member(&stack, "ada").await?,
        member(&stack, "bob").await?,
        member(&stack, "cyd").await?,
        member(&stack, "eve").await?,
    );
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let live = |who: &Member| {
        let (path, token) = (format!("/calls?chat_id={chat}"), who.token.clone());
        let stack = &stack;
        async move { stack.get(&path, Some(&token)).await }
    };
    let (status, none) = live(&bob).await?;
    assert_eq!((status, &none["call"]), (200, &Value::Null), "{none}");

    let (_, started) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    let call_id = text(&started["id"])?;
    call(&stack, &format!("/calls/{call_id}/accept"), &bob).await?;
    // Cyd opens the group later (say, after a reload): the call is there to join.
    let (status, seen) = live(&cyd).await?;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        (seen["call"]["id"].as_str(), seen["call"]["status"].as_str()),
        (Some(call_id.as_str()), Some("active"))
    );
    let (status, joined) = stack.post("/calls", Some(&cyd.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    assert_eq!((status, joined["id"].as_str()), (200, Some(call_id.as_str())), "{joined}");

    // Outsiders learn nothing, not even whether the chat exists.
    let (status, body) = live(&eve).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "{body}");
    let (status, body) = stack.get(&format!("/calls?chat_id={}", uuid::Uuid::now_v7()), Some(&eve.token)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"));
    for bad in ["/calls", "/calls?chat_id=nope"] {
        let (status, body) = stack.get(bad, Some(&ada.token)).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }

    // Removed from the group, Cyd learns nothing of its call any more.
    let url = stack.url(&format!("/chats/{chat}/members/{}", cyd.id));
    assert_eq!(stack.http.delete(url).bearer_auth(&ada.token).send().await?.status().as_u16(), 204);
    let (status, body) = live(&cyd).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "{body}");

    // Once everyone hung up, there is nothing to join.
    for who in [&ada, &bob] {
        call(&stack, &format!("/calls/{call_id}/end"), who).await?;
    }
    let (status, over) = live(&bob).await?;
    assert_eq!((status, &over["call"]), (200, &Value::Null), "{over}");

    // A logged-out session asks nothing.
    let logout = stack.http.post(stack.url("/auth/logout")).bearer_auth(&bob.token).send().await?;
    assert_eq!(logout.status().as_u16(), 204);
    let (status, _) = live(&bob).await?;
    assert_eq!(status, 401);
    Ok(())
}

#[tokio::test]
async fn bad_call_requests_get_clear_errors() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = member(&stack, "ada").await?;
    let cases = [
        (json!({"chat_id": uuid::Uuid::now_v7(), "kind": "video"}), 404),
        (json!({"chat_id": "not-a-uuid", "kind": "video"}), 400),
        (json!({"chat_id": uuid::Uuid::now_v7(), "kind": "hologram"}), 400),
        (json!({"kind": "audio"}), 400),
    ];
    for (body, expected) in cases {
        let (status, answer) = stack.post("/calls", Some(&ada.token), &body).await?;
        assert_eq!(status, expected, "{body} → {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    let (status, _) = stack.post("/calls", None, &json!({"chat_id": uuid::Uuid::now_v7(), "kind": "audio"})).await?;
    assert_eq!(status, 401);
    let (status, answer) = stack.get("/calls/nope", Some(&ada.token)).await?;
    assert_eq!(status, 400, "{answer}");
    Ok(())
}

/// Publishes a participant report as the SFU does (JetStream, the stack's SFU reports subject).
async fn sfu_report(stack: &Stack, call_id: &str, user: &Member, connected: bool) -> Result<()> {
    let nats = async_nats::connect(parley_tests::nats_url()).await?;
    let jetstream = async_nats::jetstream::new(nats);
    let subject = format!("t{}.events-sfu.{call_id}", stack.id);
    let report = json!({"call_id": call_id, "user_id": user.id, "connected": connected, "at": "2026-01-01T00:00:00Z"});
    // The api creates the stream when it starts consuming; until then publishing has no stream.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let attempt = async {
            let ack = jetstream.publish(subject.clone(), report.to_string().into()).await?;
            ack.await.map(|_| ()).map_err(anyhow::Error::from)
        };
        match attempt.await {
            Ok(()) => return Ok(()),
            Err(error) if std::time::Instant::now() > deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test]
async fn the_sfus_reports_mark_participants_connected_and_end_a_call_whose_last_one_vanished() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let mut cyds = online(&stack, &cyd).await?;
    let (_, started) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "video"})).await?;
    let call_id = text(&started["id"])?;
    call(&stack, &format!("/calls/{call_id}/accept"), &bob).await?;

    sfu_report(&stack, &call_id, &bob, true).await?;
    let frame = expect_change(&mut cyds, "connected").await?;
    assert_eq!(frame["data"]["user_id"], bob.id.as_str());
    let (_, view) = stack.get(&format!("/calls/{call_id}"), Some(&ada.token)).await?;
    let connected = |view: &Value, who: &Member| {
        view["participants"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["user_id"] == who.id.as_str()))
            .map(|p| p["connected"].clone())
    };
    assert_eq!(connected(&view, &bob), Some(json!(true)));

    // Both vanish from the SFU: the call ends by itself.
    sfu_report(&stack, &call_id, &ada, false).await?;
    sfu_report(&stack, &call_id, &bob, false).await?;
    let frame = expect_change(&mut cyds, "ended").await?;
    assert_eq!(frame["data"]["status"], "ended");
    let (_, view) = stack.get(&format!("/calls/{call_id}"), Some(&cyd.token)).await?;
    assert_eq!((view["status"].as_str(), state_of(&view, &cyd)), (Some("ended"), "left".into()));
    assert_eq!(connected(&view, &bob), Some(json!(false)));
    Ok(())
}

#[tokio::test]
async fn an_answered_call_nobody_joins_with_media_ends_and_frees_the_chat() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().env("PARLEY_CALL_RING_TIMEOUT_SECS", "1")).await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let chat = direct(&stack, &ada, &bob).await?;
    let (_, started) = stack.post("/calls", Some(&ada.token), &json!({"chat_id": chat, "kind": "audio"})).await?;
    let call_id = text(&started["id"])?;
    let (status, _) = call(&stack, &format!("/calls/{call_id}/accept"), &bob).await?;
    assert_eq!(status, 200);
    // Neither app ever reaches the SFU.
    stack
        .eventually(WAIT, "the abandoned call to end", || async {
            Ok(stack.get(&format!("/calls/{call_id}"), Some(&ada.token)).await?.1["status"] == "ended")
        })
        .await?;
    let (status, next) = stack.post("/calls", Some(&bob.token), &json!({"chat_id": chat, "kind": "audio"})).await?;
    assert_eq!(status, 201, "the chat takes a new call: {next}");
    Ok(())
}
