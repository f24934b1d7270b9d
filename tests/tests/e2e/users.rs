use anyhow::Result;
use parley_tests::{error_code, text, unique_email, Stack};
use serde_json::{json, Value};
use uuid::Uuid;

fn id_of(registered: &Value) -> Result<String> {
    text(&registered["user"]["id"])
}

fn token_of(registered: &Value) -> Result<String> {
    text(&registered["access_token"])
}

#[tokio::test]
async fn profiles_are_public_but_email_and_changes_are_your_own() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = stack.register("Ada Lovelace", &unique_email("ada")).await?;
    let bob = stack.register("Bob", &unique_email("bob")).await?;
    let (ada_id, ada_token, bob_token) = (id_of(&ada)?, token_of(&ada)?, token_of(&bob)?);

    // Read-your-writes: the update is visible to the very next query.
    let (status, updated) =
        stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"status": "Computing", "name": "Ada L."})).await?;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["name"].as_str(), updated["status"].as_str()), (Some("Ada L."), Some("Computing")));
    let (status, own) = stack.get(&format!("/users/{ada_id}"), Some(&ada_token)).await?;
    assert_eq!(status, 200);
    assert_eq!((own["name"].as_str(), own["status"].as_str()), (Some("Ada L."), Some("Computing")));
    assert!(own["email"].is_string());

    // Others see the profile without the email.
    let (status, seen) = stack.get(&format!("/users/{ada_id}"), Some(&bob_token)).await?;
    assert_eq!(status, 200);
    assert_eq!(seen["name"], "Ada L.");
    assert!(seen.get("email").is_none(), "{seen}");

    // Nobody else may change it.
    let (status, body) = stack.put(&format!("/users/{ada_id}"), &bob_token, &json!({"name": "Mallory"})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (403, "forbidden"));
    let (_, unchanged) = stack.get(&format!("/users/{ada_id}"), Some(&bob_token)).await?;
    assert_eq!(unchanged["name"], "Ada L.");

    // Avatar: set, keep when absent, remove with null.
    let (status, unowned) =
        stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"avatar_media_id": Uuid::new_v4()})).await?;
    assert_eq!((status, error_code(&unowned)?.as_str()), (403, "forbidden"), "not her upload");
    let upload = stack
        .http
        .post(stack.url("/media"))
        .bearer_auth(&ada_token)
        .header("content-type", "image/png")
        .body("png")
        .send()
        .await?;
    let (status, uploaded) = parley_tests::read(upload).await?;
    assert_eq!(status, 201, "{uploaded}");
    let avatar = text(&uploaded["id"])?;
    let (_, with_avatar) =
        stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"avatar_media_id": avatar})).await?;
    assert_eq!(with_avatar["avatar_media_id"].as_str(), Some(avatar.as_str()));
    let (_, kept) = stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"status": "Back"})).await?;
    assert_eq!(kept["avatar_media_id"].as_str(), Some(avatar.as_str()));
    let (_, removed) = stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"avatar_media_id": null})).await?;
    assert!(removed["avatar_media_id"].is_null());
    let (_, seen) = stack.get(&format!("/users/{ada_id}"), Some(&bob_token)).await?;
    assert!(seen["avatar_media_id"].is_null());
    assert_eq!(seen["status"], "Back");

    // Invalid values are refused with a reason.
    let (status, body) = stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"name": "  "})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_name"));
    let (status, body) =
        stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"status": "x".repeat(141)})).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (400, "invalid_status"));

    // Unknown users are 404.
    let (status, body) = stack.get(&format!("/users/{}", Uuid::new_v4()), Some(&bob_token)).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"));
    Ok(())
}

#[tokio::test]
async fn search_finds_by_name_and_by_status_and_pages() -> Result<()> {
    let stack = Stack::start().await?;
    let tag = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut ids = Vec::new();
    for i in 0..3 {
        let user = stack.register(&format!("Zed {tag} {i}"), &unique_email("zed")).await?;
        ids.push(id_of(&user)?);
    }
    let walker = stack.register("Walker", &unique_email("walker")).await?;
    let token = token_of(&walker)?;
    let (status, _) =
        stack.put(&format!("/users/{}", id_of(&walker)?), &token, &json!({"status": format!("hiking {tag}")})).await?;
    assert_eq!(status, 200);

    // By name, case-insensitively, in pages of two.
    let (status, page) = stack.get(&format!("/users?q=ZED%20{tag}&limit=2"), Some(&token)).await?;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> =
        page["items"].as_array().map(|a| a.iter().filter_map(|u| u["name"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, [format!("Zed {tag} 0"), format!("Zed {tag} 1")]);
    let cursor = text(&page["next_cursor"])?;
    assert!(!cursor.is_empty());
    let (_, rest) = stack.get(&format!("/users?q=zed%20{tag}&limit=2&cursor={cursor}"), Some(&token)).await?;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest["items"][0]["name"], format!("Zed {tag} 2"));
    assert!(rest["next_cursor"].is_null());
    assert!(rest["items"][0].get("email").is_none());

    // By status.
    let (_, by_status) = stack.get(&format!("/users?q=HIKING%20{tag}"), Some(&token)).await?;
    assert_eq!(by_status["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(by_status["items"][0]["name"], "Walker");

    // Wildcards match literally; bad parameters are 400.
    let (_, none) = stack.get("/users?q=%25%25%25", Some(&token)).await?;
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0));
    for bad in ["/users?q=", "/users?q=a&limit=0", "/users?q=a&limit=201", "/users?q=a&cursor=%21%21", "/users"] {
        let (status, body) = stack.get(bad, Some(&token)).await?;
        assert_eq!(status, 400, "{bad}: {body}");
        error_code(&body)?;
    }
    Ok(())
}

#[tokio::test]
async fn a_profile_change_reaches_those_who_share_a_chat_and_no_one_else() -> Result<()> {
    use std::time::Duration;

    use parley_tests::Socket;

    let stack = Stack::start().await?;
    let ada = stack.register("Ada", &unique_email("ada")).await?;
    let bob = stack.register("Bob", &unique_email("bob")).await?;
    let cyd = stack.register("Cyd", &unique_email("cyd")).await?;
    let (ada_id, ada_token) = (id_of(&ada)?, token_of(&ada)?);
    let (status, chat) =
        stack.post("/chats", Some(&ada_token), &json!({"type": "direct", "member_ids": [id_of(&bob)?]})).await?;
    assert_eq!(status, 201, "{chat}");
    let (_, ada_elsewhere) = stack
        .post("/auth/login", None, &json!({"email": ada["user"]["email"], "password": parley_tests::PASSWORD}))
        .await?;

    let mut bobs = Socket::connect(&stack.base_url, &token_of(&bob)?, None).await?;
    let mut cyds = Socket::connect(&stack.base_url, &token_of(&cyd)?, None).await?;
    let mut adas_other = Socket::connect(&stack.base_url, &token_of(&ada_elsewhere)?, None).await?;
    bobs.expect("chat.member_added", Duration::from_secs(5)).await.ok();

    let (status, body) =
        stack.put(&format!("/users/{ada_id}"), &ada_token, &json!({"name": "Ada L.", "status": "away"})).await?;
    assert_eq!(status, 200, "{body}");
    for socket in [&mut bobs, &mut adas_other] {
        let frame = socket.expect("user.updated", Duration::from_secs(10)).await?;
        assert_eq!(frame["data"], json!({"user_id": ada_id, "name": "Ada L.", "status": "away"}), "{frame}");
        assert!(frame["cursor"].is_string(), "stored in the feed, so a reconnect replays it: {frame}");
    }
    // Cyd shares no chat with Ada: nothing about her reaches him.
    while let Some(frame) = cyds.next(Duration::from_millis(800)).await? {
        assert_ne!(frame["type"], "user.updated", "{frame}");
    }
    Ok(())
}
