//! Media through the api and real object storage: the local filesystem backend by default, and
//! S3 (a moto server that `scripts/test` starts) when `PARLEY_TEST_S3_ENDPOINT` is set.

use std::time::Duration;

use anyhow::{ensure, Result};
use parley_tests::{error_code, read, text, Stack, StackOptions};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use parley_tests::{group, member, Member};

const WAIT: Duration = Duration::from_secs(10);

/// The stacks to run a media test on: local storage, and S3 when a test server is configured.
fn backends(extra: &[(&str, &str)]) -> Vec<StackOptions> {
    let mut local = StackOptions::default();
    for (key, value) in extra {
        local = local.env(key, value);
    }
    let mut all = vec![local.clone()];
    if let Ok(endpoint) = std::env::var("PARLEY_TEST_S3_ENDPOINT") {
        let bucket = std::env::var("PARLEY_TEST_S3_BUCKET").unwrap_or_else(|_| "parley-test".into());
        all.push(
            local
                .env("PARLEY_S3_ENDPOINT", &endpoint)
                .env("PARLEY_S3_BUCKET", &bucket)
                .env("PARLEY_S3_ACCESS_KEY_ID", "test")
                .env("PARLEY_S3_SECRET_ACCESS_KEY", "test"),
        );
    }
    all
}

fn is_s3(options: &StackOptions) -> bool {
    options.env.contains_key("PARLEY_S3_BUCKET")
}

async fn upload(stack: &Stack, who: &Member, content_type: &str, bytes: Vec<u8>) -> Result<(u16, Value)> {
    let request = stack.http.post(stack.url("/media")).bearer_auth(&who.token).header("content-type", content_type);
    read(request.body(bytes).send().await?).await
}

async fn download(
    stack: &Stack,
    who: &Member,
    id: &str,
    range: Option<&str>,
) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>)> {
    let mut request = stack.http.get(stack.url(&format!("/media/{id}"))).bearer_auth(&who.token);
    if let Some(range) = range {
        request = request.header("range", range);
    }
    let response = request.send().await?;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Ok((status, headers, response.bytes().await?.to_vec()))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Files directly under the stack's local media directory, or objects in its S3 bucket.
async fn stored_objects(stack: &Stack, options: &StackOptions) -> Result<usize> {
    if is_s3(options) {
        let endpoint = options.env.get("PARLEY_S3_ENDPOINT").cloned().unwrap_or_default();
        let bucket = options.env.get("PARLEY_S3_BUCKET").cloned().unwrap_or_default();
        let listing = stack
            .http
            .get(format!("{endpoint}/{bucket}?list-type=2&prefix=t{}/", stack.id))
            .send()
            .await?
            .text()
            .await?;
        return Ok(listing.matches("<Key>").count());
    }
    let dir = stack.data_dir().join("media").join(format!("t{}", stack.id)).join("media");
    Ok(std::fs::read_dir(dir).map(|entries| entries.count()).unwrap_or(0))
}

#[tokio::test]
async fn uploads_round_trip_with_checksums_and_ranges_on_every_backend() -> Result<()> {
    for options in backends(&[]) {
        let stack = Stack::start_with(options.clone()).await?;
        let ada = member(&stack, "ada").await?;
        // Larger than one 8 MiB part, so a multipart upload with several parts.
        let bytes = pattern(9 * 1024 * 1024 + 123);
        let (status, media) = upload(&stack, &ada, "video/mp4", bytes.clone()).await?;
        assert_eq!(status, 201, "{media}");
        assert_eq!(media["size"], bytes.len());
        assert_eq!(media["sha256"], hex_sha256(&bytes));
        assert_eq!(media["content_type"], "video/mp4");
        let id = text(&media["id"])?;

        let (status, headers, body) = download(&stack, &ada, &id, None).await?;
        assert_eq!(status, 200);
        assert!(body == bytes, "downloaded bytes differ ({} bytes)", body.len());
        assert_eq!(headers["content-type"], "video/mp4");
        assert_eq!(headers["etag"], format!("\"{}\"", hex_sha256(&bytes)));
        assert_eq!(headers["content-length"], bytes.len().to_string().as_str());
        assert_eq!(headers["accept-ranges"], "bytes");

        let len = bytes.len();
        for (range, expected) in [
            ("bytes=0-99", 0..100),
            (&format!("bytes={}-{}", len / 2, len / 2 + 4999) as &str, len / 2..len / 2 + 5000),
            ("bytes=-1000", len - 1000..len),
            (&format!("bytes={}-", len - 10) as &str, len - 10..len),
        ] {
            let (status, headers, body) = download(&stack, &ada, &id, Some(range)).await?;
            assert_eq!(status, 206, "{range}");
            assert!(body == bytes[expected.clone()], "{range}: wrong bytes");
            assert_eq!(
                headers["content-range"],
                format!("bytes {}-{}/{len}", expected.start, expected.end - 1).as_str(),
                "{range}"
            );
        }
        for range in [format!("bytes={len}-"), "bytes=9-3".to_owned(), "pages=1-2".to_owned()] {
            let (status, headers, _) = download(&stack, &ada, &id, Some(&range)).await?;
            assert_eq!(status, 416, "{range}");
            assert_eq!(headers["content-range"], format!("bytes */{len}").as_str());
        }
        eprintln!("backend ok (s3: {})", is_s3(&options));
    }
    Ok(())
}

#[tokio::test]
async fn media_is_for_the_uploader_and_the_chats_it_was_sent_to() -> Result<()> {
    let stack = Stack::start().await?;
    let (ada, bob, eve) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "eve").await?);
    let chat = group(&stack, &ada, &[&bob]).await?;
    let (_, photo) = upload(&stack, &ada, "image/jpeg", pattern(5000)).await?;
    let id = text(&photo["id"])?;
    // Not sent anywhere yet: only Ada.
    assert_eq!(download(&stack, &bob, &id, None).await?.0, 404);

    // Bob cannot send Ada's upload; Ada can.
    let body =
        |media: &str| json!({"client_msg_id": "p1", "ciphertext": "aGk=", "algorithm": "x", "media_ids": [media]});
    let (status, refused) = stack.post(&format!("/chats/{chat}/messages"), Some(&bob.token), &body(&id)).await?;
    assert_eq!((status, error_code(&refused)?.as_str()), (403, "forbidden"), "{refused}");
    let (status, sent) = stack.post(&format!("/chats/{chat}/messages"), Some(&ada.token), &body(&id)).await?;
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["media_ids"], json!([id]));
    stack
        .eventually(WAIT, "Bob to be able to read the photo", || async {
            Ok(download(&stack, &bob, &id, None).await?.0 == 200)
        })
        .await?;
    // Eve is in no chat with it.
    assert_eq!(download(&stack, &eve, &id, None).await?.0, 404);
    let (status, body) =
        read(stack.http.delete(stack.url(&format!("/media/{id}"))).bearer_auth(&bob.token).send().await?).await?;
    assert_eq!((status, error_code(&body)?.as_str()), (404, "not_found"), "only the uploader deletes");
    // An unknown id looks the same as a forbidden one.
    assert_eq!(download(&stack, &ada, &uuid::Uuid::now_v7().to_string(), None).await?.0, 404);
    Ok(())
}

#[tokio::test]
async fn over_the_limit_is_413_and_leaves_nothing_behind() -> Result<()> {
    for options in backends(&[("PARLEY_MEDIA_MAX_BYTES", "1048576")]) {
        let stack = Stack::start_with(options.clone()).await?;
        let ada = member(&stack, "ada").await?;
        let before = stored_objects(&stack, &options).await?;
        // Declared too large.
        let (status, body) = upload(&stack, &ada, "video/mp4", pattern(1024 * 1024 + 1)).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (413, "payload_too_large"), "{body}");
        // Streamed without a length: found out on the way.
        let chunks =
            futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(pattern(64 * 1024)))));
        let request = stack.http.post(stack.url("/media")).bearer_auth(&ada.token).header("content-type", "video/mp4");
        // The server stops reading at the limit: the client sees the 413, or, still sending, a
        // closed connection.
        if let Ok(response) = request.body(reqwest::Body::wrap_stream(chunks)).send().await {
            let (status, body) = read(response).await?;
            assert_eq!((status, error_code(&body)?.as_str()), (413, "payload_too_large"), "{body}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stored_objects(&stack, &options).await?, before, "a refused upload left bytes behind");
        let (status, _) = upload(&stack, &ada, "video/mp4", pattern(1024 * 1024)).await?;
        assert_eq!(status, 201, "exactly the limit is fine");
    }
    Ok(())
}

#[tokio::test]
async fn deleting_media_or_its_message_removes_the_bytes() -> Result<()> {
    for options in backends(&[]) {
        let stack = Stack::start_with(options.clone()).await?;
        let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
        let chat = group(&stack, &ada, &[&bob]).await?;
        let baseline = stored_objects(&stack, &options).await?;

        // Deleted by its uploader.
        let (_, first) = upload(&stack, &ada, "image/png", pattern(2000)).await?;
        let first_id = text(&first["id"])?;
        let response =
            stack.http.delete(stack.url(&format!("/media/{first_id}"))).bearer_auth(&ada.token).send().await?;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(download(&stack, &ada, &first_id, None).await?.0, 404);

        // Sent, then the message deleted for everyone.
        let (_, second) = upload(&stack, &ada, "image/png", pattern(3000)).await?;
        let second_id = text(&second["id"])?;
        let body = json!({"client_msg_id": "m", "ciphertext": "aGk=", "algorithm": "x", "media_ids": [second_id]});
        let (_, message) = stack.post(&format!("/chats/{chat}/messages"), Some(&ada.token), &body).await?;
        stack
            .eventually(WAIT, "Bob to see the photo", || async {
                Ok(download(&stack, &bob, &second_id, None).await?.0 == 200)
            })
            .await?;
        let message_id = &*text(&message["id"])?;
        let response = stack
            .http
            .delete(stack.url(&format!("/chats/{chat}/messages/{message_id}?for=everyone")))
            .bearer_auth(&ada.token)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(download(&stack, &bob, &second_id, None).await?.0, 404, "erased for Bob at once");

        stack
            .eventually(Duration::from_secs(15), "the reaper to remove both objects", || async {
                Ok(stored_objects(&stack, &options).await? == baseline)
            })
            .await?;
        assert_eq!(download(&stack, &ada, &second_id, None).await?.0, 404);
    }
    Ok(())
}

#[tokio::test]
async fn unattached_uploads_are_reaped_but_avatars_and_sent_media_stay() -> Result<()> {
    let stack = Stack::start_with(StackOptions::default().env("PARLEY_MEDIA_UNATTACHED_TTL_SECS", "2")).await?;
    let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
    let (_, stray) = upload(&stack, &ada, "image/png", pattern(100)).await?;
    let (_, avatar) = upload(&stack, &ada, "image/png", pattern(200)).await?;
    let (stray, avatar) = (text(&stray["id"])?, text(&avatar["id"])?);
    let (status, profile) =
        stack.put(&format!("/users/{}", ada.id), &ada.token, &json!({"avatar_media_id": avatar})).await?;
    ensure!(status == 200, "set avatar: {status} {profile}");
    // The avatar is anyone's to see, and in the profile.
    let (_, seen) = stack.get(&format!("/users/{}", ada.id), Some(&bob.token)).await?;
    assert_eq!(seen["avatar_media_id"], avatar.as_str());
    let url = text(&seen["avatar_url"])?;
    assert_eq!(url, format!("/media/{avatar}"));
    let picture = stack.http.get(stack.url(&url)).bearer_auth(&bob.token).send().await?;
    assert_eq!(picture.status().as_u16(), 200);
    assert!(picture.bytes().await?.to_vec() == pattern(200));
    stack
        .eventually(WAIT, "the stray upload to be reaped", || async {
            Ok(download(&stack, &ada, &stray, None).await?.0 == 404)
        })
        .await?;
    assert_eq!(download(&stack, &ada, &avatar, None).await?.0, 200, "the avatar stays");
    // An upload session nobody finishes goes too.
    let (_, session) = stack.post("/media/uploads", Some(&ada.token), &json!({"content_type": "video/mp4"})).await?;
    let path = format!("/media/uploads/{}", text(&session["upload_id"])?);
    assert_eq!(stack.get(&path, Some(&ada.token)).await?.0, 200);
    stack
        .eventually(WAIT, "the abandoned session to be removed", || async {
            Ok(stack.get(&path, Some(&ada.token)).await?.0 == 404)
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_last_byte_received() -> Result<()> {
    for options in backends(&[]) {
        let stack = Stack::start_with(options.clone()).await?;
        let (ada, bob) = (member(&stack, "ada").await?, member(&stack, "bob").await?);
        let video = pattern(10 * 1024 * 1024 + 777);
        let (status, session) =
            stack.post("/media/uploads", Some(&ada.token), &json!({"content_type": "video/mp4"})).await?;
        assert_eq!((status, session["offset"].as_u64()), (201, Some(0)), "{session}");
        let upload_id = text(&session["upload_id"])?;
        let path = format!("/media/uploads/{upload_id}");

        // The network drops after 3 MiB of the first request: a raw connection sends the request
        // and part of its body, then goes away.
        let mut socket = tokio::net::TcpStream::connect(stack.base_url.trim_start_matches("http://")).await?;
        let head = format!(
            "PATCH {path} HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer {}\r\nUpload-Offset: 0\r\n\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            ada.token,
            video.len()
        );
        socket.write_all(head.as_bytes()).await?;
        for chunk in video[..3 * 1024 * 1024].chunks(256 * 1024) {
            socket.write_all(chunk).await?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(socket);
        stack
            .eventually(WAIT, "the server to keep what arrived", || async {
                Ok(stack.get(&path, Some(&ada.token)).await?.1["offset"].as_u64().unwrap_or(0) > 0)
            })
            .await?;
        // Settled: the chunk's task has finished.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let offset = stack.get(&path, Some(&ada.token)).await?.1["offset"].as_u64().unwrap_or(0);
        assert!(offset <= 3 * 1024 * 1024, "kept {offset}");

        // Only the owner sees the session; a wrong offset is refused with the right one.
        assert_eq!(stack.get(&path, Some(&bob.token)).await?.0, 404);
        let wrong = stack
            .http
            .patch(stack.url(&path))
            .bearer_auth(&ada.token)
            .header("upload-offset", "1")
            .body("x")
            .send()
            .await?;
        let (status, body) = read(wrong).await?;
        assert_eq!((status, error_code(&body)?.as_str()), (409, "offset_mismatch"), "{body}");

        // Resume from there, then finish.
        let rest = video[offset as usize..].to_vec();
        let resumed = stack
            .http
            .patch(stack.url(&path))
            .bearer_auth(&ada.token)
            .header("upload-offset", offset.to_string())
            .body(rest)
            .send()
            .await?;
        let (status, body) = read(resumed).await?;
        assert_eq!((status, body["offset"].as_u64()), (200, Some(video.len() as u64)), "{body}");
        let (status, media) = stack.post(&format!("{path}/complete"), Some(&ada.token), &json!(null)).await?;
        assert_eq!(status, 201, "{media}");
        assert_eq!(media["sha256"], hex_sha256(&video));
        let (status, _, bytes) = download(&stack, &ada, &text(&media["id"])?, None).await?;
        assert!(status == 200 && bytes == video, "resumed upload differs");
        assert_eq!(stack.get(&path, Some(&ada.token)).await?.0, 404, "the session is gone");
        eprintln!("resumable ok (s3: {})", is_s3(&options));
    }
    Ok(())
}

#[tokio::test]
async fn media_is_served_so_that_no_upload_can_act_as_a_page() -> Result<()> {
    let stack = Stack::start().await?;
    let ada = member(&stack, "ada").await?;
    let page = b"<html><script>alert(document.cookie)</script></html>".to_vec();
    for (declared, served, disposition) in [
        ("text/html", "application/octet-stream", "attachment"),
        ("image/svg+xml", "application/octet-stream", "attachment"),
        ("image/png", "image/png", "inline"),
        ("video/mp4", "video/mp4", "inline"),
    ] {
        let (status, media) = upload(&stack, &ada, declared, page.clone()).await?;
        ensure!(status == 201, "upload: {status} {media}");
        assert_eq!(media["content_type"], declared, "the declared type is recorded as sent");
        let id = &*text(&media["id"])?;
        for range in [None, Some("bytes=0-9")] {
            let (status, headers, _) = download(&stack, &ada, id, range).await?;
            assert!(status == 200 || status == 206, "{status}");
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            assert_eq!(header("content-type"), served, "{declared}");
            assert_eq!(header("content-disposition"), disposition, "{declared}");
            assert_eq!(header("x-content-type-options"), "nosniff");
            let csp = header("content-security-policy");
            assert!(csp.contains("sandbox") && csp.contains("default-src 'none'"), "{csp}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn deleting_one_message_keeps_an_upload_that_another_message_or_a_profile_uses() -> Result<()> {
    for options in backends(&[]) {
        let stack = Stack::start_with(options.clone()).await?;
        let (ada, bob, cy, dee) = (
            member(&stack, "ada").await?,
            member(&stack, "bob").await?,
            member(&stack, "cy").await?,
            member(&stack, "dee").await?,
        );
        let (first_chat, second_chat) = (group(&stack, &ada, &[&bob]).await?, group(&stack, &ada, &[&cy]).await?);
        let baseline = stored_objects(&stack, &options).await?;
        let (_, photo) = upload(&stack, &ada, "image/jpeg", pattern(5000)).await?;
        let photo = text(&photo["id"])?;
        let (status, _) =
            stack.put(&format!("/users/{}", ada.id), &ada.token, &json!({"avatar_media_id": photo})).await?;
        ensure!(status == 200, "set avatar: {status}");
        let mut messages = Vec::new();
        for chat in [&first_chat, &second_chat] {
            let body = json!({"client_msg_id": "p", "ciphertext": "aGk=", "algorithm": "x", "media_ids": [photo]});
            let (status, message) = stack.post(&format!("/chats/{chat}/messages"), Some(&ada.token), &body).await?;
            ensure!(status == 201, "send: {status} {message}");
            messages.push(text(&message["id"])?);
        }
        let delete_for_everyone = |chat: &str, message: &str| {
            let url = stack.url(&format!("/chats/{chat}/messages/{message}?for=everyone"));
            let request = stack.http.delete(url).bearer_auth(&ada.token);
            async move { Ok::<u16, anyhow::Error>(request.send().await?.status().as_u16()) }
        };

        // The first chat's message goes: the second chat's member and any profile viewer still
        // read the photo, through several reaper passes.
        assert_eq!(delete_for_everyone(&first_chat, &messages[0]).await?, 204);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(download(&stack, &cy, &photo, None).await?.0, 200, "the other chat's member");
        assert_eq!(download(&stack, &dee, &photo, None).await?.0, 200, "a profile viewer");
        assert_eq!(stored_objects(&stack, &options).await?, baseline + 1, "the object stays");

        // Once the avatar changes and the last message carrying it is deleted, nothing uses it.
        let (status, _) =
            stack.put(&format!("/users/{}", ada.id), &ada.token, &json!({"avatar_media_id": null})).await?;
        ensure!(status == 200, "clear avatar: {status}");
        assert_eq!(download(&stack, &cy, &photo, None).await?.0, 200, "still in the second chat");
        assert_eq!(delete_for_everyone(&second_chat, &messages[1]).await?, 204);
        stack
            .eventually(Duration::from_secs(15), "the reaper to remove the unused photo", || async {
                Ok(stored_objects(&stack, &options).await? == baseline)
            })
            .await?;
        assert_eq!(download(&stack, &ada, &photo, None).await?.0, 404);
    }
    Ok(())
}
