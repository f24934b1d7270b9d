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

/// Presence rows left by an api replica that is gone (killed, so its sockets never deleted them)
/// are swept by a live replica, with the gone replica's own row; live sockets' rows stay.
#[tokio::test]
async fn presence_left_by_a_replica_that_is_gone_is_swept() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = member(&stack, "ada").await?;
    let mut adas = Socket::connect(&stack.base_url, &ada.token, None).await?;
    adas.send(&json!({"type": "ping"})).await?;
    adas.expect("pong", WAIT).await?;
    let ada_id: uuid::Uuid = ada.id.parse()?;
    let (gone, recent) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    sqlx::query(
        "INSERT INTO presence_replicas (replica_id, last_seen) \
         VALUES ($1, now() - interval '1 hour'), ($2, now() - interval '2 minutes')",
    )
    .bind(gone)
    .bind(recent)
    .execute(&stack.pool)
    .await?;
    sqlx::query(
        "INSERT INTO presence (connection_id, user_id, replica_id) \
         SELECT gen_random_uuid(), $1, r FROM unnest(ARRAY[$2, $2, $3]::uuid[]) AS r",
    )
    .bind(ada_id)
    .bind(gone)
    .bind(recent)
    .execute(&stack.pool)
    .await?;
    let rows_of = |replica: uuid::Uuid| {
        let pool = stack.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM presence WHERE replica_id = $1")
                .bind(replica)
                .fetch_one(&pool)
                .await
        }
    };
    // The hub refreshes (and sweeps) every third of the idle timeout: 20 s here.
    stack
        .eventually(Duration::from_secs(45), "the gone replica's presence swept", || async {
            Ok(rows_of(gone).await? == 0)
        })
        .await?;
    let replicas: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT replica_id FROM presence_replicas").fetch_all(&stack.pool).await?;
    assert!(!replicas.contains(&gone), "the gone replica's row stayed");
    // A replica unseen for two minutes may be cut off for a moment: its rows stay.
    assert!(replicas.contains(&recent));
    assert_eq!(rows_of(recent).await?, 1);
    // Ada's live socket is still present, and still counts as online.
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM presence p JOIN presence_replicas r USING (replica_id) \
         WHERE p.user_id = $1 AND r.last_seen > now() - interval '90 seconds'",
    )
    .bind(ada_id)
    .fetch_one(&stack.pool)
    .await?;
    assert_eq!(live, 1);
    Ok(())
}
