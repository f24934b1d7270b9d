//! The published spec describes what the server sends: schemathesis (an independent OpenAPI
//! fuzzer) generates valid and invalid requests for every operation of the running stack's
//! `/openapi.json` and checks that no answer is a server error, and that every status, content
//! type and body is one the spec declares for that operation.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use parley_tests::{direct, group, member, send, text, Stack};
use serde_json::json;

/// schemathesis's CLI, installed by scripts/test beside the test peers' Python.
fn schemathesis() -> PathBuf {
    PathBuf::from(parley_tests::python()).with_file_name("st")
}

#[tokio::test]
async fn schemathesis_finds_every_answer_as_the_spec_describes_it() -> Result<()> {
    let stack = Stack::start().await?;
    // Data for the listing routes to return, with every optional field both set and unset:
    // a group and a direct chat, a reply, a profile with and without a picture, notifications.
    let (ada, bob, cy) = (member(&stack, "ada").await?, member(&stack, "bob").await?, member(&stack, "cy").await?);
    let team = group(&stack, &ada, &[&bob, &cy]).await?;
    direct(&stack, &ada, &bob).await?;
    let (status, first) = send(&stack, &team, &bob, "m1", "hello").await?;
    ensure!(status == 201, "send: {status} {first}");
    let reply = json!({"client_msg_id": "m2", "ciphertext": "aGk=", "algorithm": "m.megolm.v1.aes-sha2",
                       "reply_to": text(&first["id"])?});
    let (status, body) = stack.post(&format!("/chats/{team}/messages"), Some(&ada.token), &reply).await?;
    ensure!(status == 201, "reply: {status} {body}");
    let (status, body) = stack.put(&format!("/users/{}", ada.id), &ada.token, &json!({"status": "around"})).await?;
    ensure!(status == 200, "profile: {status} {body}");

    let work_dir = stack.data_dir().join("schemathesis");
    std::fs::create_dir_all(&work_dir)?;
    let run = tokio::process::Command::new(schemathesis())
        .arg("run")
        .arg(stack.url("/openapi.json"))
        .args(["--url", &stack.base_url])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--header", &format!("Authorization: Bearer {}", ada.token)])
        // Logging out would end the session every other operation runs in.
        .args(["--exclude-operation-id", "logout"])
        .args(["--max-examples", "25", "--workers", "2", "--request-timeout", "10"])
        .args(["--phases", "examples,coverage,fuzzing", "--seed", "1"])
        .args(["--no-color", "--generation-database", "none"])
        .current_dir(&work_dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .context("schemathesis ran for over 10 minutes")?
        .context("running schemathesis (scripts/test installs it)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "schemathesis found what the spec does not say:\n{stdout}\n{stderr}");
    // It ran every operation (a filter or a broken spec would pass with nothing tested).
    ensure!(!stdout.contains("No operations"), "{stdout}");
    let (status, _) = stack.get("/healthz", None).await?;
    ensure!(status == 200, "unhealthy after the run");
    Ok(())
}
