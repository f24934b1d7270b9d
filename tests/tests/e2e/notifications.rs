use std::time::Duration;

use anyhow::Result;
use parley_tests::{error_code, text, Socket, Stack};
use serde_json::{json, Value};

use parley_tests::{group, member, send};

const WAIT: Duration = Duration::from_secs(10);

fn kinds(page: &Value) -> Vec<String> {
    page["items"].as_array().into_iter().flatten().map(|n| n["kind"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn offline_members_are_notified_and_manage_their_notifications() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, cyd) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cyd").await?);
    let chat = group(&stack, &ada, &[&bob, &cyd]).await?;
    let mut bobs = Socket::connect(&stack.base_url, &bob.token, None).await?;
    bobs.send(&json!({"type": "ping"})).await?;
    bobs.expect("pong", WAIT).await?; // the session (and its presence) is up
    let (status, sent) = send(&stack, &chat, &ada, "m1", "are you there?").await?;
    assert_eq!(status, 201);
    bobs.expect("message.created", WAIT).await?;

    // Cyd was offline: notified of the message (newest first) and of being added.
    stack
        .eventually(WAIT, "Cyd's message notification", || async {
            Ok(kinds(&stack.get("/notifications", Some(&cyd.token)).await?.1) == ["message", "added_to_group"])
        })
        .await?;
    let (_, cyds) = stack.get("/notifications", Some(&cyd.token)).await?;
    assert_eq!(cyds["items"][0]["data"]["message_id"], sent["id"]);
    assert_eq!(cyds["items"][0]["read"], false);
    // Bob was online: only the group addition; Ada none.
    let (_, bobs_page) = stack.get("/notifications", Some(&bob.token)).await?;
    assert_eq!(kinds(&bobs_page), ["added_to_group"]);
    let (_, adas) = stack.get("/notifications", Some(&ada.token)).await?;
    assert_eq!(kinds(&adas), Vec::<String>::new());

    // Mark one read, then all; delete one; someone else's is not found.
    let first = cyds["items"][0]["id"].clone();
    let (status, _) = stack.post("/notifications/mark-read", Some(&cyd.token), &json!({"ids": [first]})).await?;
    assert_eq!(status, 204);
    let (_, page) = stack.get("/notifications", Some(&cyd.token)).await?;
    assert_eq!((page["items"][0]["read"].clone(), page["items"][1]["read"].clone()), (json!(true), json!(false)));
    let response = stack.http.post(stack.url("/notifications/mark-read")).bearer_auth(&cyd.token).send().await?;
    assert_eq!(response.status().as_u16(), 204);
    let (_, page) = stack.get("/notifications", Some(&cyd.token)).await?;
    assert!(page["items"].as_array().into_iter().flatten().all(|n| n["read"] == true));
    let bobs_own = text(&bobs_page["items"][0]["id"])?;
    let (status, body) = parley_tests::read(
        stack.http.delete(stack.url(&format!("/notifications/{bobs_own}"))).bearer_auth(&cyd.token).send().await?,
    )
    .await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"));
    let response = stack
        .http
        .delete(stack.url(&format!("/notifications/{}", text(&first)?)))
        .bearer_auth(&cyd.token)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 204);
    let (_, page) = stack.get("/notifications", Some(&cyd.token)).await?;
    assert_eq!(kinds(&page), ["added_to_group"]);
    let (_, bobs_page) = stack.get("/notifications", Some(&bob.token)).await?;
    assert_eq!(kinds(&bobs_page), ["added_to_group"], "Bob's are untouched");
    Ok(())
}

#[tokio::test]
async fn being_added_to_a_group_arrives_as_a_notification_frame() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, dee) = (member(&stack, "ada").await?, member(&stack, "dee").await?);
    let chat = group(&stack, &ada, &[]).await?;
    let mut dees = Socket::connect(&stack.base_url, &dee.token, None).await?;
    let (status, _) =
        stack.post(&format!("/chats/{chat}/members"), Some(&ada.token), &json!({"user_ids": [dee.id]})).await?;
    assert_eq!(status, 200);
    let frame = dees.expect("notification.created", WAIT).await?;
    assert_eq!(frame["data"]["kind"], "added_to_group");
    assert_eq!(frame["data"]["data"]["chat_id"].as_str(), Some(chat.as_str()));
    Ok(())
}
