//! The `parley` command-line client against the real stack, real crypto: three users, one of them with two
//! devices (two profiles), a direct chat and a group. Every device decrypts every message and photo sent
//! while it was there; a member added later cannot decrypt earlier messages; a removed member cannot
//! decrypt later ones; a second device added after some messages decrypts what comes after it; both sides
//! compute the same safety number; `watch` shows a message live, decrypted.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use parley_tests::{binary, text, unique_email, Stack, PASSWORD};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(15);

/// Runs `parley` with its own XDG data directory (one per test), against one stack.
struct Parley {
    bin: PathBuf,
    data: PathBuf,
    server: String,
}

/// What one run printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The last stdout line as JSON (commands print one object with `--json`).
    fn json(&self) -> Result<Value> {
        let last = self.stdout.lines().last().context(format!("no output; stderr: {}", self.stderr))?;
        serde_json::from_str(last).with_context(|| format!("not JSON: {last}"))
    }

    /// Every stdout line as JSON (`watch --json`).
    fn lines(&self) -> Result<Vec<Value>> {
        self.stdout
            .lines()
            .map(|line| serde_json::from_str(line).with_context(|| format!("not JSON: {line}")))
            .collect()
    }
}

impl Parley {
    fn new(stack: &Stack) -> Result<Self> {
        let data = std::env::temp_dir().join(format!("parley-cli-e2e-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data)?;
        Ok(Self { bin: binary("parley")?, data, server: stack.base_url.clone() })
    }

    fn std_command(&self, profile: &str, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.bin);
        command
            .arg("--json")
            .arg("--profile")
            .arg(profile)
            .args(args)
            .env("XDG_DATA_HOME", &self.data)
            .env("PARLEY_SERVER", &self.server)
            .env("PARLEY_PASSPHRASE", format!("passphrase of {profile}"))
            .env("PARLEY_PASSWORD", PASSWORD)
            .env_remove("PARLEY_PROFILE");
        command
    }

    fn command(&self, profile: &str, args: &[&str]) -> Command {
        let mut command = Command::from(self.std_command(profile, args));
        command.kill_on_drop(true);
        command
    }

    /// Runs and insists on success, measuring the process's peak resident memory (KiB): its
    /// `VmHWM`, read every 20 ms while it runs. (`wait4`'s `ru_maxrss` also counts the forked
    /// copy of this test process before `exec`, which grows with whatever else the suite runs.)
    async fn run_measured(&self, profile: &str, args: &[&str]) -> Result<(Value, i64)> {
        let tag = Uuid::new_v4().simple().to_string();
        let (out_path, err_path) = (self.data.join(format!("{tag}.out")), self.data.join(format!("{tag}.err")));
        let mut command = self.std_command(profile, args);
        command
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path)?)
            .stderr(std::fs::File::create(&err_path)?);
        let mut child = command.spawn()?;
        let (status, max_rss) = tokio::task::spawn_blocking(move || -> Result<(std::process::ExitStatus, i64)> {
            let status_file = format!("/proc/{}/status", child.id());
            let mut peak = 0;
            loop {
                if let Some(status) = child.try_wait()? {
                    return Ok((status, peak));
                }
                let hwm = std::fs::read_to_string(&status_file).ok().and_then(|text| {
                    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?.to_owned();
                    line.split_whitespace().nth(1)?.parse::<i64>().ok()
                });
                peak = peak.max(hwm.unwrap_or(0));
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
        .await??;
        let run = Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&out_path)?,
            stderr: std::fs::read_to_string(&err_path)?,
        };
        ensure!(run.code == 0, "parley --profile {profile} {args:?} failed ({}): {}", run.code, run.stderr);
        Ok((run.json()?, max_rss))
    }

    async fn try_run(&self, profile: &str, args: &[&str], stdin: Option<&str>) -> Result<Run> {
        let mut command = self.command(profile, args);
        command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().context("spawning parley")?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes()).await?;
            drop(pipe);
        }
        let output = child.wait_with_output().await?;
        Ok(Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Runs and insists on success; the JSON it printed.
    async fn run(&self, profile: &str, args: &[&str]) -> Result<Value> {
        let run = self.try_run(profile, args, None).await?;
        ensure!(run.code == 0, "parley --profile {profile} {args:?} failed ({}): {}", run.code, run.stderr);
        if !run.stderr.is_empty() {
            println!("parley --profile {profile} {args:?} said: {}", run.stderr);
        }
        run.json()
    }

    /// The chat's history as `profile` decrypts it: (body or marker) per message, oldest first.
    async fn read(&self, profile: &str, chat: &str) -> Result<Vec<Value>> {
        let page = self.run(profile, &["read", chat, "--limit", "200"]).await?;
        Ok(page["messages"].as_array().cloned().unwrap_or_default())
    }

    /// Reads until `check` holds for the decrypted history (projections are eventually consistent).
    async fn read_until(
        &self,
        profile: &str,
        chat: &str,
        what: &str,
        check: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let messages = self.read(profile, chat).await?;
            if check(&messages) {
                return Ok(messages);
            }
            if Instant::now() > deadline {
                bail!("{profile}: timed out waiting for {what}; history: {}", summary(&messages));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Asks `profile` to decrypt raw messages (as another member's `read --json` lists them).
    async fn decrypt_raw(&self, profile: &str, chat: &str, messages: &[Value]) -> Result<Vec<Value>> {
        let input: String = messages.iter().map(|message| format!("{message}\n")).collect();
        let run = self.try_run(profile, &["decrypt-raw", chat], Some(&input)).await?;
        ensure!(run.code == 0, "decrypt-raw as {profile} failed: {}", run.stderr);
        run.lines()
    }
}

impl Drop for Parley {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn summary(messages: &[Value]) -> String {
    messages
        .iter()
        .map(|m| format!("#{} {}:{}", m["seq"], m["type"].as_str().unwrap_or("?"), m["body"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The plaintext of the message whose body is `body`, if `profile` decrypted it.
fn decrypted(messages: &[Value], body: &str) -> bool {
    messages.iter().any(|m| m["type"] == "text" && m["body"] == body)
}

fn find<'a>(messages: &'a [Value], body: &str) -> Result<&'a Value> {
    messages.iter().find(|m| m["body"] == body).with_context(|| format!("no message {body:?} in {}", summary(messages)))
}

/// Registers `name` as the first device, in `profile`; returns the user id and email.
async fn register(parley: &Parley, profile: &str, name: &str) -> Result<(String, String)> {
    let email = unique_email(name);
    let answer = parley.run(profile, &["register", name, &email, "--device-name", profile]).await?;
    Ok((text(&answer["user_id"])?, email))
}

fn bodies_decrypted(messages: &[Value], bodies: &[&str]) -> bool {
    bodies.iter().all(|body| decrypted(messages, body))
}

/// `profile` cannot decrypt any of `messages` (given as another member listed them).
async fn cannot_decrypt(parley: &Parley, profile: &str, chat: &str, messages: &[&Value]) -> Result<()> {
    let owned: Vec<Value> = messages.iter().map(|message| (*message).clone()).collect();
    let results = parley.decrypt_raw(profile, chat, &owned).await?;
    ensure!(results.len() == messages.len(), "{profile}: {} results for {} messages", results.len(), messages.len());
    for result in &results {
        ensure!(result["type"] == "undecryptable", "{profile} decrypted what it must not: {result}");
    }
    Ok(())
}

/// A photo-like file of `len` pseudo-random bytes.
fn photo(dir: &Path, name: &str, len: usize) -> Result<(PathBuf, Vec<u8>)> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes)?;
    Ok((path, bytes))
}

/// Downloads the attachment of message `seq` as `profile` and checks its bytes.
async fn download_matches(parley: &Parley, profile: &str, chat: &str, seq: i64, expected: &[u8]) -> Result<()> {
    let out = parley.data.join(format!("{profile}-{chat}-{seq}.bin"));
    let out_text = out.display().to_string();
    let answer = parley.run(profile, &["download", chat, &seq.to_string(), "--out", &out_text]).await?;
    ensure!(answer["verified"] == true, "{answer}");
    let got = std::fs::read(&out)?;
    ensure!(got == expected, "{profile}: the downloaded photo differs ({} vs {} bytes)", got.len(), expected.len());
    Ok(())
}

#[tokio::test]
async fn e2ee_cli_three_users_four_devices_direct_and_group() -> Result<()> {
    let stack = Stack::start().await?;
    let parley = Parley::new(&stack)?;
    let (alice, _) = register(&parley, "alice", "alice").await?;
    let (bob, bob_email) = register(&parley, "bob-laptop", "bob").await?;
    let (carol, _) = register(&parley, "carol", "carol").await?;

    // ----- Direct chat: text both ways and a photo -----
    let direct = text(&parley.run("alice", &["chat", "new", "--direct", &bob]).await?["chat"]["id"])?;
    parley.run("alice", &["send", &direct, "hello bob"]).await?;
    parley.run("bob-laptop", &["send", &direct, "hi alice"]).await?;
    let (photo_path, photo_bytes) = photo(&parley.data, "beach.png", 300_000)?;
    let photo_arg = photo_path.display().to_string();
    let sent = parley.run("alice", &["send-file", &direct, &photo_arg, "--caption", "the beach"]).await?;
    let photo_seq = sent["seq"].as_i64().context("seq")?;
    for profile in ["alice", "bob-laptop"] {
        let history = parley
            .read_until(profile, &direct, "the direct messages", |m| bodies_decrypted(m, &["hello bob", "hi alice"]))
            .await?;
        let file = find(&history, "the beach")?;
        ensure!(file["type"] == "file" && file["file"]["name"] == "beach.png", "{profile}: {file}");
        ensure!(file["file"].get("key").is_none(), "the attachment key is never printed");
        download_matches(&parley, profile, &direct, photo_seq, &photo_bytes).await?;
    }
    // What the server stores is not the plaintext.
    for message in &parley.read("alice", &direct).await? {
        let ciphertext = &*text(&message["ciphertext"])?;
        ensure!(!ciphertext.is_empty() && message["algorithm"] == "parley.megolm.v1", "{message}");
    }

    // ----- Group: alice and bob's laptop -----
    let created = parley.run("alice", &["chat", "new", "--group", "Team", "--members", &bob]).await?;
    let group = text(&created["chat"]["id"])?;
    parley.run("alice", &["send", &group, "g1 from alice"]).await?;
    parley.run("bob-laptop", &["send", &group, "g2 from bob"]).await?;
    parley.read_until("bob-laptop", &group, "g1", |m| bodies_decrypted(m, &["g1 from alice", "g2 from bob"])).await?;

    // Bob's second device arrives after g1 and g2: it reads what comes after it.
    parley.run("bob-phone", &["login", &bob_email, "--device-name", "phone"]).await?;
    let devices = parley.run("bob-phone", &["devices"]).await?;
    ensure!(devices["devices"].as_array().map(Vec::len) == Some(2), "bob has two devices: {devices}");
    parley.run("alice", &["send", &group, "g3 from alice"]).await?;
    parley.run("bob-laptop", &["send", &group, "g3b from bob's laptop"]).await?;
    parley.run("alice", &["send", &direct, "direct after the phone"]).await?;
    let phone = parley
        .read_until("bob-phone", &group, "g3 on the phone", |m| {
            bodies_decrypted(m, &["g3 from alice", "g3b from bob's laptop"])
        })
        .await?;
    for earlier in ["g1 from alice", "g2 from bob"] {
        ensure!(!decrypted(&phone, earlier), "the phone decrypted {earlier:?}, sent before it existed");
    }
    parley.read_until("bob-phone", &direct, "the direct message", |m| decrypted(m, "direct after the phone")).await?;

    // ----- Carol is added later: she cannot decrypt what came before -----
    let before_carol = parley.read("alice", &group).await?;
    ensure!(before_carol.len() == 4, "four group messages so far: {}", summary(&before_carol));
    parley.run("alice", &["chat", "add", &group, &carol]).await?;
    parley.run("alice", &["send", &group, "g4 welcome carol"]).await?;
    parley.run("bob-phone", &["send", &group, "g5 from bob's phone"]).await?;
    let (group_photo, group_photo_bytes) = photo(&parley.data, "team.jpg", 150_000)?;
    let group_photo_arg = group_photo.display().to_string();
    let sent = parley.run("carol", &["send-file", &group, &group_photo_arg, "--caption", "team photo"]).await?;
    let group_photo_seq = sent["seq"].as_i64().context("seq")?;
    let everyone = ["alice", "bob-laptop", "bob-phone", "carol"];
    for profile in everyone {
        parley
            .read_until(profile, &group, "g4 and g5", |m| {
                bodies_decrypted(m, &["g4 welcome carol", "g5 from bob's phone"])
            })
            .await?;
        download_matches(&parley, profile, &group, group_photo_seq, &group_photo_bytes).await?;
    }
    let earlier: Vec<&Value> = before_carol.iter().collect();
    cannot_decrypt(&parley, "carol", &group, &earlier).await?;

    // ----- Bob is removed: neither of his devices decrypts what comes after -----
    parley.run("alice", &["chat", "remove", &group, &bob]).await?;
    parley.run("alice", &["send", &group, "g6 without bob"]).await?;
    parley.run("carol", &["send", &group, "g7 carol without bob"]).await?;
    let after = parley
        .read_until("carol", &group, "g6 and g7", |m| bodies_decrypted(m, &["g6 without bob", "g7 carol without bob"]))
        .await?;
    parley.read_until("alice", &group, "g7", |m| decrypted(m, "g7 carol without bob")).await?;
    let later = [find(&after, "g6 without bob")?, find(&after, "g7 carol without bob")?];
    for profile in ["bob-laptop", "bob-phone"] {
        cannot_decrypt(&parley, profile, &group, &later).await?;
        let run = parley.try_run(profile, &["read", &group], None).await?;
        ensure!(run.code != 0, "{profile} still reads the group it was removed from: {}", run.stdout);
    }

    // ----- Safety numbers agree on both sides; a wrong expectation fails -----
    let seen_by_alice = parley.run("alice", &["verify", &bob]).await?;
    let seen_by_bob = parley.run("bob-laptop", &["verify", &alice]).await?;
    let number = seen_by_alice["safety_number"].as_str().context("safety number")?.to_owned();
    ensure!(number.len() == 60 && number.bytes().all(|b| b.is_ascii_digit()), "{number}");
    ensure!(seen_by_bob["safety_number"] == number.as_str(), "{seen_by_alice} vs {seen_by_bob}");
    ensure!(seen_by_alice["devices"].as_array().map(Vec::len) == Some(2), "both of bob's devices: {seen_by_alice}");
    parley.run("bob-phone", &["verify", &alice, "--expect", &number]).await?;
    let wrong = parley.try_run("alice", &["verify", &bob, "--expect", &"1".repeat(60)], None).await?;
    ensure!(wrong.code != 0 && wrong.stderr.contains("mismatch"), "a wrong safety number must fail: {}", wrong.stderr);

    // ----- A group joined by invite; watch shows its first message live (the room key comes first) -----
    let team2 =
        text(&parley.run("alice", &["chat", "new", "--group", "Team2", "--members", &bob]).await?["chat"]["id"])?;
    let invite = parley.run("alice", &["chat", "invite", &team2]).await?;
    let code = invite["invite_code"].as_str().context("invite code")?.to_owned();
    parley.run("carol", &["chat", "join", &code]).await?;
    let mut watcher = parley.command("bob-laptop", &["watch", "--timeout", "12"]);
    let watcher = watcher.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    parley.run("alice", &["send", &team2, "live in team2"]).await?;
    // Carol reading the chat is a read receipt that bob's watch shows.
    parley.read_until("carol", &team2, "the live message", |m| decrypted(m, "live in team2")).await?;
    let output = tokio::time::timeout(Duration::from_secs(40), watcher.wait_with_output()).await??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "watch failed: {}", String::from_utf8_lossy(&output.stderr));
    let events: Vec<Value> = stdout.lines().filter_map(|line| serde_json::from_str::<Value>(line).ok()).collect();
    let live =
        events.iter().find(|line| line["event"] == "message").context(format!("watch printed no message: {stdout}"))?;
    ensure!(live["type"] == "text" && live["body"] == "live in team2", "{live}");
    ensure!(live["sender_name"] == "alice", "{live}");
    ensure!(
        events
            .iter()
            .any(|line| line["event"] == "read" && line["user_name"] == "carol" && line["chat_id"] == team2.as_str()),
        "watch showed no read receipt from carol: {stdout}"
    );

    // ----- chats shows decrypted previews; delete for everyone leaves a tombstone -----
    let chats = parley.run("bob-laptop", &["chats"]).await?;
    let preview = chats["chats"]
        .as_array()
        .and_then(|chats| chats.iter().find(|chat| chat["id"] == team2.as_str()))
        .context(format!("team2 in {chats}"))?;
    ensure!(preview["last_message"]["body"] == "live in team2", "{preview}");
    let sent = parley.run("alice", &["send", &direct, "to be deleted"]).await?;
    parley.run("alice", &["delete", &direct, &text(&sent["id"])?, "--for", "everyone"]).await?;
    let history = parley.read_until("bob-laptop", &direct, "the tombstone", |m| {
        m.iter().any(|message| message["id"] == sent["id"] && message["type"] == "deleted")
    });
    history.await?;

    // ----- The state on disk is private and encrypted -----
    use std::os::unix::fs::PermissionsExt;
    let dir = parley.data.join("parley/alice");
    ensure!(std::fs::metadata(&dir)?.permissions().mode() & 0o777 == 0o700);
    let state = std::fs::read(dir.join("state"))?;
    ensure!(std::fs::metadata(dir.join("state"))?.permissions().mode() & 0o777 == 0o600);
    ensure!(!state.windows(5).any(|w| w == b"alice"), "the state file holds no plaintext");

    // ----- Logging out removes the device -----
    parley.run("bob-phone", &["logout"]).await?;
    let devices = parley.run("bob-laptop", &["devices"]).await?;
    ensure!(devices["devices"].as_array().map(Vec::len) == Some(1), "bob's phone is gone: {devices}");
    Ok(())
}

/// A 64 MiB attachment goes up and comes back through a fixed buffer: the client's resident memory
/// stays far below the file's size (encrypted while streaming the upload; the download is hashed to a
/// temporary file, then decrypted in a second pass). Human output is checked on the way.
#[tokio::test]
async fn e2ee_cli_large_attachment_streams_in_bounded_memory() -> Result<()> {
    const SIZE: usize = 64 * 1024 * 1024;
    let stack = Stack::start().await?;
    let parley = Parley::new(&stack)?;
    let (_, _) = register(&parley, "ann", "ann").await?;
    let (ben, _) = register(&parley, "ben", "ben").await?;
    let chat = text(&parley.run("ann", &["chat", "new", "--direct", &ben]).await?["chat"]["id"])?;

    let path = parley.data.join("video.mp4");
    {
        use std::io::Write;
        let (_, block) = photo(&parley.data, "block", 1024 * 1024)?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for index in 0..SIZE / block.len() {
            let mut block = block.clone();
            block[0] = index as u8;
            file.write_all(&block)?;
        }
        file.flush()?;
    }
    let path_arg = path.display().to_string();
    let started = Instant::now();
    let (sent, upload_rss) = parley.run_measured("ann", &["send-file", &chat, &path_arg, "--caption", "big"]).await?;
    println!("send-file: {:?}", started.elapsed());
    let started = Instant::now();
    let seq = sent["seq"].as_i64().context("seq")?;
    let out = parley.data.join("received.mp4");
    let out_arg = out.display().to_string();
    let (saved, download_rss) =
        parley.run_measured("ben", &["download", &chat, &seq.to_string(), "--out", &out_arg]).await?;
    ensure!(saved["size"] == SIZE as u64, "{saved}");
    println!("download: {:?}", started.elapsed());
    let (upload_mib, download_mib) = (upload_rss / 1024, download_rss / 1024);
    println!("peak resident memory: send-file {upload_mib} MiB, download {download_mib} MiB");
    ensure!(upload_mib < 48 && download_mib < 48, "a client held {upload_mib}/{download_mib} MiB for a 64 MiB file");
    ensure!(std::fs::read(&out)? == std::fs::read(&path)?, "the downloaded file differs");
    let leftovers: Vec<_> = std::fs::read_dir(&parley.data)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(".parley-download"))
        .collect();
    ensure!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");

    // People get text, not JSON.
    let mut plain = Command::new(&parley.bin);
    plain
        .args(["--profile", "ben", "read", &chat])
        .env("XDG_DATA_HOME", &parley.data)
        .env("PARLEY_PASSPHRASE", "passphrase of ben")
        .env("PARLEY_SERVER", &parley.server)
        .stdin(Stdio::null());
    let plain = plain.output().await?;
    let text = String::from_utf8_lossy(&plain.stdout);
    println!("{text}");
    ensure!(plain.status.success() && text.contains("[file video.mp4 · 67108864 bytes · video/mp4] — big"), "{text}");
    Ok(())
}
