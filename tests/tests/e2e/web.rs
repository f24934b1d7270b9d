//! The web app in a real browser: the api serves `web/apps/web`'s static export (built by
//! `scripts/build-web`, which `scripts/test` runs first) under `/app/`, and headless Chromium
//! (Debian's, driven by playwright-core from the web workspace's lockfile) goes through it as
//! people would. Each scenario is a Node script in `web/e2e/scenarios/` printing a JSON report as
//! its last line; the assertions that matter are made there, step by step, and this file insists
//! that every step passed, that no page logged a Content-Security-Policy violation and that no
//! page threw. Screenshots land in `.parley/test/artifacts/web/` (see `web/e2e/README.md`).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use parley_tests::{binary, repo_root, run_web_scenario, web_artifacts_dir, Stack, StackOptions};
use serde_json::Value;

/// One scenario's budget, on two shared cores with the rest of the suite running.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

/// A stack that serves the web app's export; a clear failure when it was not built.
async fn web_stack() -> Result<Stack> {
    Stack::start_with(web_options()?).await
}

/// The options of a stack that serves the web app's export.
fn web_options() -> Result<StackOptions> {
    let export = repo_root().join("web/apps/web/out");
    ensure!(
        export.join("index.html").is_file(),
        "the web app's static export is missing ({}): build it with scripts/build-web (scripts/test does so \
         before cargo test)",
        export.display()
    );
    let export = export.canonicalize()?.display().to_string();
    Ok(StackOptions::default().env("PARLEY_WEB_DIR", &export))
}

/// Runs `name` and insists on a clean report.
async fn scenario(stack: &Stack, name: &str, args: &[String]) -> Result<Value> {
    let report = run_web_scenario(&stack.base_url, name, args, SCENARIO_TIMEOUT).await?;
    let steps: Vec<String> = report["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| format!("{} {} ({} ms)", if s["ok"] == true { "ok  " } else { "FAIL" }, s["name"], s["ms"]))
                .collect()
        })
        .unwrap_or_default();
    println!("web scenario {name} ({} ms):\n  {}", report["ms"], steps.join("\n  "));
    ensure!(
        report["ok"] == true,
        "web scenario {name} failed at {}: {}\nsteps:\n  {}\nscreenshots in {}; report: {report}",
        report["failed_step"],
        report["error"].as_str().unwrap_or("?"),
        steps.join("\n  "),
        web_artifacts_dir().display()
    );
    let violations = report["csp_violations"].as_array().context("csp_violations")?;
    ensure!(violations.is_empty(), "web scenario {name}: Content-Security-Policy violations: {violations:?}");
    let errors = report["page_errors"].as_array().context("page_errors")?;
    ensure!(errors.is_empty(), "web scenario {name}: uncaught errors in pages: {errors:?}");
    Ok(report)
}

/// Everything on one stack, one scenario after another: the screens at phone and laptop sizes
/// with axe-core, registering, a chat, typing, ticks, a cut socket's replay, a group (`ui`);
/// uploads that never run as pages of our origin (`media`); an end-to-end encrypted conversation
/// between two browsers with a photo (`conversation`); a browser and the `parley` CLI decrypting
/// each other's messages and photos (`cli`); a group in three browsers with delete for everyone,
/// an invite link and a late joiner who reads only what came after (`group-invite`); the app
/// installable, caching only its shell and starting offline (`pwa`).
#[tokio::test]
async fn web_app_in_chromium() -> Result<()> {
    let stack = web_stack().await?;
    let ui = scenario(&stack, "ui", &[]).await?;
    let axe = ui["data"]["axe"].as_object().context("axe results")?;
    for screen in ["login (desktop)", "login (phone)", "chat list (phone)", "chat (desktop)", "chat (phone)"] {
        ensure!(axe.get(screen) == Some(&Value::from(0)), "axe did not pass on {screen}: {axe:?}");
    }
    for shot in ["login-desktop", "login-phone", "chats-phone", "chat-desktop", "chat-phone"] {
        let path = web_artifacts_dir().join(format!("{shot}.png"));
        ensure!(std::fs::metadata(&path).map(|m| m.len() > 1000).unwrap_or(false), "no screenshot {}", path.display());
    }
    let reconnects = ui["data"]["reconnect_urls"].as_array().context("reconnect urls")?;
    ensure!(reconnects.iter().any(|url| url.as_str().is_some_and(|u| u.contains("cursor="))), "{reconnects:?}");

    let media = scenario(&stack, "media", &[]).await?;
    for kind in ["html", "svg"] {
        let opened = &media["data"]["opened"][kind];
        ensure!(opened["content_type"] == "application/octet-stream", "{kind}: {opened}");
        ensure!(opened["csp"].as_str().is_some_and(|csp| csp.contains("sandbox")), "{kind}: {opened}");
    }
    ensure!(media["data"]["pwned"].as_array().is_some_and(Vec::is_empty), "{}", media["data"]);

    let conversation = scenario(&stack, "conversation", &[]).await?;
    let photo = &conversation["data"]["photo"]["receiver"];
    ensure!(photo["src"] == "blob:" && photo["width"] == 160, "the photo as the receiver saw it: {photo}");

    let cli_home = std::env::temp_dir().join(format!("parley-web-cli-{}", stack.id));
    std::fs::create_dir_all(&cli_home)?;
    let args = [format!("parley={}", binary("parley")?.display()), format!("home={}", cli_home.display())];
    let cli = scenario(&stack, "cli", &args).await;
    let _ = std::fs::remove_dir_all(&cli_home);
    ensure!(cli?["data"]["browser_photo_in_cli"]["verified"] == true, "the CLI verified the browser's photo");

    let group = scenario(&stack, "group-invite", &[]).await?;
    ensure!(group["data"]["invite_link"].as_str().is_some_and(|link| link.contains("/app/join")), "{}", group["data"]);

    let pwa = scenario(&stack, "pwa", &[]).await?;
    ensure!(pwa["data"]["cached"]["files"].as_u64().is_some_and(|files| files > 10), "{}", pwa["data"]);
    Ok(())
}

/// Calls between browsers through the SFU (`calls`): 1:1 video, voice, declined, missed (the
/// stack rings for 6 s), a network cut and rejoin (the SFU's test-only blackhole), a group of
/// four with a leaver and a late joiner.
#[tokio::test]
async fn web_calls_in_chromium() -> Result<()> {
    let options =
        web_options()?.with_sfu().env("PARLEY_CALL_RING_TIMEOUT_SECS", "6").env("PARLEY_SFU_TEST_FAULTS", "1");
    let stack = Stack::start_with(options).await?;
    let sfu = stack.sfu_base.clone().context("the stack's SFU")?;
    let report = scenario(&stack, "calls", &[format!("sfu={sfu}")]).await?;
    println!(
        "late joiner's first remote frame after {} ms, everyone's after {} ms; rejoin after the cut {} ms",
        report["data"]["late_join_ms"], report["data"]["late_join_all_ms"], report["data"]["rejoin_ms"]
    );
    for shot in ["call-ringing-phone", "call-1to1-desktop", "call-1to1-phone", "call-group-desktop", "call-group-phone"]
    {
        let path = web_artifacts_dir().join(format!("{shot}.png"));
        ensure!(std::fs::metadata(&path).map(|m| m.len() > 1000).unwrap_or(false), "no screenshot {}", path.display());
    }
    Ok(())
}
