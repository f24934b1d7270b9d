//! One function per command.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;

use parley_client_core::{MessageContent, OwnDevice};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::api::{Api, ChatSummary, Message, SignedIn, User};
use crate::args::{ChatAction, Cli, Command, DeleteScope, DevicesAction, UsersAction, DEFAULT_SERVER};
use crate::e2ee::{self, decrypt, lacks_key, message_json, message_line, warn, Shown};
use crate::error::{CliError, Result};
use crate::media;
use crate::output::Output;
use crate::prompt::account_password;
use crate::session::{Context, Signed};
use crate::store::Session;
use crate::watch;

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli, ctx: &mut Context) -> Result<()> {
    let out = Output { json: cli.json };
    match cli.command {
        Command::Register { name, email, avatar, device_name } => {
            register(ctx, &out, &name, &email, avatar, device_name.as_deref()).await
        }
        Command::Login { email, device_name } => login(ctx, &out, &email, device_name.as_deref()).await,
        Command::Logout => logout(ctx, &out).await,
        Command::Devices { action } => devices(ctx, &out, action).await,
        Command::Users { action: UsersAction::Search { text } } => search(ctx, &out, &text).await,
        Command::Chats => chats(ctx, &out).await,
        Command::Chat { action } => chat(ctx, &out, action).await,
        Command::Send { chat, text } => send(ctx, &out, &chat, MessageContent::Text { body: text }).await,
        Command::SendFile { chat, path, caption, content_type } => {
            send_file(ctx, &out, &chat, path, caption, content_type).await
        }
        Command::Read { chat, limit } => read(ctx, &out, &chat, limit).await,
        Command::Download { chat, message_id, out: target } => download(ctx, &out, &chat, &message_id, target).await,
        Command::Delete { chat, message_id, scope } => delete(ctx, &out, &chat, &message_id, scope).await,
        Command::Watch(args) => watch::watch(ctx, &out, &args).await,
        Command::Verify { user, expect, accept } => verify(ctx, &out, &user, expect.as_deref(), accept).await,
        Command::DecryptRaw { chat } => decrypt_raw(ctx, &out, &chat).await,
    }
}

fn parse_id(what: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text.trim()).map_err(|_| CliError::Usage(format!("{what} {text:?} is not an id")))
}

// ----- Signing in -----

async fn signed_in_from(
    ctx: &mut Context,
    out: &Output,
    answer: SignedIn,
    server: &str,
    display_name: Option<&str>,
) -> Result<()> {
    let lock = ctx.lock()?;
    let existing = ctx.load(&lock)?;
    if let Some(existing) = existing.session {
        return Err(CliError::Usage(format!(
            "profile {:?} is already signed in as {} ({}): `parley --profile {} logout` first, or use another --profile",
            ctx.profile.name(),
            existing.name,
            existing.email,
            ctx.profile.name()
        )));
    }
    let session = Session {
        server: server.to_owned(),
        user_id: answer.user.id,
        device_id: answer.device_id,
        name: answer.user.name.clone(),
        email: answer.user.email.clone().unwrap_or_default(),
        access_token: answer.access_token,
        refresh_token: answer.refresh_token,
        names: BTreeMap::from([(answer.user.id, answer.user.name.clone())]),
        keys_published: false,
    };
    let device = OwnDevice::new(session.user_id, session.device_id);
    // Saved before publishing: the server must never hold keys whose secret halves were lost.
    ctx.save_new(&lock, &session, &device)?;
    let mut signed = ctx.adopt(lock, session, device)?;
    e2ee::publish_keys(&mut signed, display_name).await?;
    ctx.save(&signed)?;
    let keys = signed.device.identity_keys();
    out.event(
        &json!({"user_id": signed.session.user_id, "name": signed.session.name, "device_id": signed.session.device_id,
                "ed25519": keys.ed25519.to_base64(), "curve25519": keys.curve25519.to_base64(),
                "profile": ctx.profile.name(), "server": signed.session.server}),
        || {
            format!(
                "Signed in as {} (user {}) on {}\nThis profile ({}) is device {} with ed25519 key {}",
                signed.session.name,
                signed.session.user_id,
                signed.session.server,
                ctx.profile.name(),
                signed.session.device_id,
                keys.ed25519.to_base64()
            )
        },
    );
    Ok(())
}

fn server_for_sign_in(ctx: &Context) -> String {
    ctx.server_override.clone().unwrap_or_else(|| DEFAULT_SERVER.to_owned()).trim_end_matches('/').to_owned()
}

fn refuse_if_signed_in(ctx: &mut Context) -> Result<()> {
    if ctx.profile.has_state() {
        let lock = ctx.lock()?;
        if let Some(session) = ctx.load(&lock)?.session {
            return Err(CliError::Usage(format!(
                "profile {:?} is already signed in as {}: `parley --profile {} logout` first, or use another --profile",
                ctx.profile.name(),
                session.name,
                ctx.profile.name()
            )));
        }
    }
    Ok(())
}

async fn register(
    ctx: &mut Context,
    out: &Output,
    name: &str,
    email: &str,
    avatar: Option<PathBuf>,
    device_name: Option<&str>,
) -> Result<()> {
    refuse_if_signed_in(ctx)?;
    let server = server_for_sign_in(ctx);
    let password = account_password(true)?;
    let api = Api::anonymous(&server);
    let answer = api.register(name, email, password.expose()).await?;
    let user_id = answer.user.id;
    let token = answer.access_token.clone();
    signed_in_from(ctx, out, answer, &server, device_name).await?;
    if let Some(path) = avatar {
        out.info("Uploading the avatar UNENCRYPTED: profile pictures are public profile data.");
        let api = Api::with_token(&server, &token)?;
        let media_id = media::upload_plain(&api, &path, media::guess_content_type(&path)).await?;
        api.set_avatar(user_id, media_id).await?;
        out.event(&json!({"avatar_media_id": media_id, "encrypted": false}), || {
            format!("Avatar set (media {media_id}, not encrypted)")
        });
    }
    Ok(())
}

async fn login(ctx: &mut Context, out: &Output, email: &str, device_name: Option<&str>) -> Result<()> {
    refuse_if_signed_in(ctx)?;
    let server = server_for_sign_in(ctx);
    let password = account_password(false)?;
    let answer = Api::anonymous(&server).login(email, password.expose()).await?;
    signed_in_from(ctx, out, answer, &server, device_name).await
}

async fn logout(ctx: &mut Context, out: &Output) -> Result<()> {
    let signed = ctx.signed_in().await?;
    let result = signed.api.logout(&signed.session.refresh_token).await;
    let name = signed.session.name.clone();
    // The device's keys are useless once its session is gone: the local state goes either way.
    ctx.clear(signed)?;
    if let Err(error) = result {
        warn(&format!("the server did not confirm the logout ({error}); local keys were deleted"));
    }
    out.event(&json!({"logged_out": true, "profile": ctx.profile.name()}), || {
        format!("Signed {name} out; this profile's keys are deleted.")
    });
    Ok(())
}

// ----- Devices and users -----

async fn devices(ctx: &mut Context, out: &Output, action: Option<DevicesAction>) -> Result<()> {
    let signed = ctx.signed_in().await?;
    match action {
        None => {
            let devices = signed.api.own_devices().await?;
            out.event(&json!({"devices": devices}), || {
                devices
                    .iter()
                    .map(|device| {
                        format!(
                            "{}{}  {:<16} created {}  last seen {}  one-time keys {}",
                            device.device_id,
                            if device.current { " (this one)" } else { "" },
                            device.display_name.as_deref().unwrap_or("-"),
                            device.created_at.get(..16).unwrap_or(&device.created_at),
                            device.last_seen_at.as_deref().and_then(|seen| seen.get(..16)).unwrap_or("-"),
                            device.one_time_key_count
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Some(DevicesAction::Remove { device_id }) => {
            let device_id = parse_id("device", &device_id)?;
            signed.api.remove_device(device_id).await?;
            if device_id == signed.session.device_id {
                warn("you removed this very device: its session is revoked; run `parley logout` to clear it");
            }
            out.event(&json!({"removed": device_id}), || format!("Removed device {device_id}"));
        }
    }
    ctx.finish(signed)
}

async fn search(ctx: &mut Context, out: &Output, text: &str) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    let users = signed.api.search_users(text).await?;
    for user in &users {
        signed.session.names.insert(user.id, user.name.clone());
    }
    out.event(&json!({"users": users}), || {
        users
            .iter()
            .map(|user| {
                let status = if user.status.is_empty() { String::new() } else { format!("  — {}", user.status) };
                format!("{}  {}{status}", user.id, user.name)
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    ctx.finish(signed)
}

/// A user by id, or by a name (or email) search that gives exactly one match.
async fn resolve_user(signed: &mut Signed, text: &str) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(text.trim()) {
        return Ok(id);
    }
    let found = signed.api.search_users(text.trim()).await?;
    for user in &found {
        signed.session.names.insert(user.id, user.name.clone());
    }
    let exact: Vec<&User> = found
        .iter()
        .filter(|user| {
            user.name.eq_ignore_ascii_case(text.trim())
                || user.email.as_deref().is_some_and(|email| email.eq_ignore_ascii_case(text.trim()))
        })
        .collect();
    match (exact.as_slice(), found.as_slice()) {
        ([one], _) => Ok(one.id),
        ([], [one]) => Ok(one.id),
        ([], []) => Err(CliError::NotFound(format!("no user matches {text:?}"))),
        _ => Err(CliError::Usage(format!(
            "{text:?} matches several users ({}): give an id",
            found.iter().map(|user| format!("{} {}", user.name, user.id)).collect::<Vec<_>>().join(", ")
        ))),
    }
}

// ----- Chats -----

/// A chat by id, or by the exact name of one of your groups.
async fn resolve_chat(signed: &Signed, text: &str) -> Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(text.trim()) {
        return Ok(id);
    }
    let chats = signed.api.list_chats().await?;
    let matching: Vec<&ChatSummary> =
        chats.iter().filter(|chat| chat.name.as_deref().is_some_and(|name| name.eq_ignore_ascii_case(text))).collect();
    match matching.as_slice() {
        [one] => Ok(one.id),
        [] => Err(CliError::NotFound(format!("no chat of yours is called {text:?}"))),
        _ => Err(CliError::Usage(format!("several chats are called {text:?}: give an id"))),
    }
}

async fn chats(ctx: &mut Context, out: &Output) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    e2ee::drain_to_device(ctx, &mut signed).await?;
    let chats = signed.api.list_chats().await?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for chat in &chats {
        let title = match (&chat.name, chat.kind.as_str()) {
            (Some(name), _) if !name.is_empty() => name.clone(),
            (_, "direct") => {
                let details = signed.api.get_chat(chat.id).await?;
                let other = details.members.iter().map(|member| member.user_id).find(|user| *user != signed.user_id());
                match other {
                    Some(other) => {
                        e2ee::learn_names(&mut signed, [other]).await;
                        signed.name_of(other)
                    }
                    None => "(just you)".into(),
                }
            }
            _ => "(unnamed)".into(),
        };
        let preview = match &chat.last_message {
            Some(message) => {
                e2ee::learn_names(&mut signed, [message.sender_id]).await;
                let shown = decrypt(&mut signed.device, message);
                Some((message, shown))
            }
            None => None,
        };
        let preview_text = preview.as_ref().map(|(message, shown)| {
            let what = match shown {
                Shown::Text(body) => body.clone(),
                Shown::File { file, .. } => format!("[file {}]", file.name),
                Shown::Deleted => "[deleted]".into(),
                Shown::Undecryptable(_) => "[encrypted]".into(),
            };
            format!("{}: {what}", signed.name_of(message.sender_id))
        });
        rows.push(json!({
            "id": chat.id, "type": chat.kind, "title": title, "member_count": chat.member_count,
            "unread_count": chat.unread_count, "last_activity_at": chat.last_activity_at,
            "last_message": preview.as_ref().map(|(message, shown)| message_json(&signed, message, shown)),
        }));
        lines.push(format!(
            "{}  {:<20} {:>3} members  {:>3} unread  {}",
            chat.id,
            title,
            chat.member_count,
            chat.unread_count,
            preview_text.unwrap_or_default()
        ));
    }
    out.event(&json!({"chats": rows}), || if lines.is_empty() { "No chats yet.".into() } else { lines.join("\n") });
    ctx.finish(signed)
}

async fn chat(ctx: &mut Context, out: &Output, action: ChatAction) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    match action {
        ChatAction::New(new) => {
            let chat = if let Some(other) = new.kind.direct {
                let other = resolve_user(&mut signed, &other).await?;
                signed.api.create_chat("direct", None, &[other]).await?
            } else {
                let name = new.kind.group.unwrap_or_default();
                let mut members = Vec::new();
                for member in &new.members {
                    members.push(resolve_user(&mut signed, member).await?);
                }
                signed.api.create_chat("group", Some(&name), &members).await?
            };
            out.event(&json!({"chat": chat}), || {
                format!(
                    "Chat {} ({}, {} members)",
                    chat.id,
                    chat.name.as_deref().unwrap_or(&chat.kind),
                    chat.members.len()
                )
            });
        }
        ChatAction::Add { chat, users } => {
            let chat = resolve_chat(&signed, &chat).await?;
            let mut ids = Vec::new();
            for user in &users {
                ids.push(resolve_user(&mut signed, user).await?);
            }
            signed.api.add_members(chat, &ids).await?;
            out.event(&json!({"chat_id": chat, "added": ids}), || {
                format!("Added {} to {chat}; the next message anyone sends uses a new key", ids.len())
            });
        }
        ChatAction::Remove { chat, user } => {
            let chat = resolve_chat(&signed, &chat).await?;
            let user = resolve_user(&mut signed, &user).await?;
            signed.api.remove_member(chat, user).await?;
            out.event(&json!({"chat_id": chat, "removed": user}), || {
                format!("Removed {} from {chat}; the next message anyone sends uses a new key", signed.name_of(user))
            });
        }
        ChatAction::Leave { chat } => {
            let chat = resolve_chat(&signed, &chat).await?;
            let me = signed.user_id();
            signed.api.remove_member(chat, me).await?;
            signed.device.discard_outbound_session(chat);
            out.event(&json!({"chat_id": chat, "left": true}), || format!("Left {chat}"));
        }
        ChatAction::Invite { chat } => {
            let chat = resolve_chat(&signed, &chat).await?;
            let invite = signed.api.create_invite(chat).await?;
            out.event(
                &json!({"chat_id": chat, "invite_code": invite.invite_code, "expires_at": invite.expires_at}),
                || {
                    format!(
                        "Invite code {} (valid until {}): `parley chat join {}`",
                        invite.invite_code, invite.expires_at, invite.invite_code
                    )
                },
            );
        }
        ChatAction::Join { code } => {
            let chat = signed.api.join_chat(code.trim()).await?;
            out.event(&json!({"chat": chat}), || {
                format!("Joined {} ({})", chat.id, chat.name.as_deref().unwrap_or(&chat.kind))
            });
        }
    }
    ctx.finish(signed)
}

// ----- Messages -----

fn sent_event(out: &Output, message: &Message) {
    out.event(
        &json!({"id": message.id, "chat_id": message.chat_id, "seq": message.seq, "client_msg_id": message.client_msg_id,
                "algorithm": message.algorithm}),
        || format!("Sent #{} ({}, encrypted)", message.seq, message.id),
    );
}

async fn send(ctx: &mut Context, out: &Output, chat: &str, content: MessageContent) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    let chat = resolve_chat(&signed, chat).await?;
    let message = e2ee::send_content(ctx, &mut signed, chat, &content, &[]).await?;
    ctx.finish(signed)?;
    sent_event(out, &message);
    Ok(())
}

async fn send_file(
    ctx: &mut Context,
    out: &Output,
    chat: &str,
    path: PathBuf,
    caption: String,
    content_type: Option<String>,
) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    let chat = resolve_chat(&signed, chat).await?;
    let content_type = content_type.unwrap_or_else(|| media::guess_content_type(&path).to_owned());
    let info = media::upload_encrypted(&signed.api, &path, &content_type).await?;
    // A long upload can outlast the access token.
    ctx.ensure_fresh_token(&mut signed).await?;
    let media_id = info.media_id;
    let content = MessageContent::File { file: info, body: caption, thumbnail: None };
    let message = e2ee::send_content(ctx, &mut signed, chat, &content, &[media_id]).await?;
    ctx.finish(signed)?;
    sent_event(out, &message);
    Ok(())
}

/// Decrypts messages, taking waiting room keys once if some key is missing.
async fn decrypt_all(ctx: &mut Context, signed: &mut Signed, messages: &[Message]) -> Result<Vec<Shown>> {
    let mut shown: Vec<Shown> = messages.iter().map(|message| decrypt(&mut signed.device, message)).collect();
    if shown.iter().any(lacks_key) {
        e2ee::drain_to_device(ctx, signed).await?;
        shown = messages.iter().map(|message| decrypt(&mut signed.device, message)).collect();
    }
    Ok(shown)
}

async fn read(ctx: &mut Context, out: &Output, chat: &str, limit: u32) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    let chat = resolve_chat(&signed, chat).await?;
    e2ee::drain_to_device(ctx, &mut signed).await?;
    let mut messages = signed.api.list_messages(chat, None, limit.clamp(1, 200)).await?;
    messages.reverse();
    e2ee::learn_names(&mut signed, messages.iter().map(|message| message.sender_id)).await;
    let shown = decrypt_all(ctx, &mut signed, &messages).await?;
    if let Some(newest) = messages.iter().map(|message| message.seq).max() {
        // Reading is a read receipt, as in any messenger.
        if let Err(error) = signed.api.mark_read(chat, newest).await {
            warn(&format!("could not mark the chat read: {error}"));
        }
    }
    let items: Vec<Value> =
        messages.iter().zip(&shown).map(|(message, shown)| message_json(&signed, message, shown)).collect();
    out.event(&json!({"chat_id": chat, "messages": items}), || {
        if messages.is_empty() {
            "No messages.".into()
        } else {
            messages
                .iter()
                .zip(&shown)
                .map(|(message, shown)| message_line(&signed, message, shown))
                .collect::<Vec<_>>()
                .join("\n")
        }
    });
    ctx.finish(signed)
}

/// A message by id or by `seq` (`7` or `#7`).
async fn find_message(signed: &Signed, chat: Uuid, reference: &str) -> Result<Message> {
    let reference = reference.trim();
    if let Ok(seq) = reference.trim_start_matches('#').parse::<i64>() {
        let page = signed.api.list_messages(chat, Some(seq + 1), 1).await?;
        return page
            .into_iter()
            .find(|message| message.seq == seq)
            .ok_or_else(|| CliError::NotFound(format!("no message #{seq} in {chat}")));
    }
    let id = parse_id("message", reference)?;
    let mut before = None;
    loop {
        let page = signed.api.list_messages(chat, before, 200).await?;
        if let Some(found) = page.iter().find(|message| message.id == id) {
            return Ok(found.clone());
        }
        match page.iter().map(|message| message.seq).min() {
            Some(lowest) if page.len() == 200 && lowest > 1 => before = Some(lowest),
            _ => return Err(CliError::NotFound(format!("no message {id} in {chat}"))),
        }
    }
}

async fn download(ctx: &mut Context, out: &Output, chat: &str, reference: &str, target: Option<PathBuf>) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    let chat = resolve_chat(&signed, chat).await?;
    let message = find_message(&signed, chat, reference).await?;
    let shown = decrypt_all(ctx, &mut signed, std::slice::from_ref(&message)).await?.pop();
    let (file, caption) = match shown {
        Some(Shown::File { file, caption }) => (file, caption),
        Some(Shown::Undecryptable(reason)) => {
            return Err(CliError::NotFound(format!("cannot decrypt that message: {reason}")))
        }
        _ => return Err(CliError::Usage("that message has no attachment".into())),
    };
    // The lock is not needed for the transfer itself.
    let api = signed.api.clone();
    ctx.finish(signed)?;
    let target = target.unwrap_or_else(|| PathBuf::from(media::file_name(std::path::Path::new(&file.name))));
    let written = media::download_decrypted(&api, &file, &target).await?;
    out.event(
        &json!({"path": target, "size": written, "name": file.name, "content_type": file.content_type, "caption": caption,
                "verified": true}),
        || format!("Saved {} ({written} bytes, hash verified, decrypted)", target.display()),
    );
    Ok(())
}

async fn delete(ctx: &mut Context, out: &Output, chat: &str, reference: &str, scope: DeleteScope) -> Result<()> {
    let signed = ctx.signed_in().await?;
    let chat = resolve_chat(&signed, chat).await?;
    let id = match Uuid::parse_str(reference.trim()) {
        Ok(id) => id,
        Err(_) => find_message(&signed, chat, reference).await?.id,
    };
    signed.api.delete_message(chat, id, scope == DeleteScope::Everyone).await?;
    let scope_name = if scope == DeleteScope::Everyone { "everyone" } else { "me" };
    out.event(&json!({"chat_id": chat, "deleted": id, "for": scope_name}), || format!("Deleted {id} for {scope_name}"));
    ctx.finish(signed)
}

async fn verify(ctx: &mut Context, out: &Output, user: &str, expect: Option<&str>, accept: bool) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    let user = resolve_user(&mut signed, user).await?;
    e2ee::learn_names(&mut signed, [user]).await;
    let me = signed.user_id();
    e2ee::sync_devices(&mut signed, &[me, user]).await?;
    let mut accepted = Vec::new();
    if accept {
        let pending: Vec<_> = signed
            .device
            .trust_store()
            .listed_devices(user)
            .iter()
            .map(|keys| keys.address())
            .filter(|address| {
                signed.device.trust_store().device(*address).is_some_and(|known| known.pending_key_change.is_some())
            })
            .collect();
        for device in pending {
            let keys = signed.device.accept_key_change(device)?;
            accepted.push(json!({"device_id": device.device_id, "ed25519": keys.ed25519.to_base64()}));
        }
    }
    let number = signed.device.safety_number_with(user);
    let devices: Vec<Value> = signed
        .device
        .trust_store()
        .listed_devices(user)
        .iter()
        .map(|keys| json!({"device_id": keys.device_id, "ed25519": keys.ed25519.to_base64()}))
        .collect();
    let name = signed.name_of(user);
    out.event(
        &json!({"user_id": user, "name": name, "safety_number": number.compact(), "grouped": number.grouped(),
                "devices": devices, "accepted": accepted}),
        || {
            let mut text = format!(
                "Safety number with {name} ({} of their devices):\n  {}\n  compact: {}\nCompare it with theirs (`parley verify <you>` on their side); equal numbers mean no one is in between.",
                devices.len(),
                number.grouped(),
                number.compact()
            );
            if !accepted.is_empty() {
                text.push_str(&format!("\nAccepted the new keys of {} device(s).", accepted.len()));
            }
            text
        },
    );
    ctx.finish(signed)?;
    if let Some(expected) = expect {
        let expected: String = expected.chars().filter(char::is_ascii_digit).collect();
        if expected != number.compact() {
            return Err(CliError::SafetyNumberMismatch { expected, actual: number.compact().to_owned() });
        }
    }
    Ok(())
}

/// For tests and debugging: reads server message objects (one JSON object per line, e.g. the `messages` of
/// `read --json` of another member) and says whether this device can decrypt each.
async fn decrypt_raw(ctx: &mut Context, out: &Output, chat: &str) -> Result<()> {
    let mut signed = ctx.signed_in().await?;
    let chat = parse_id("chat", chat)?;
    e2ee::drain_to_device(ctx, &mut signed).await?;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.map_err(CliError::io("read", "standard input"))?;
        if line.trim().is_empty() {
            continue;
        }
        let message: Message =
            serde_json::from_str(&line).map_err(|error| CliError::Usage(format!("not a message object: {error}")))?;
        if message.chat_id != chat {
            return Err(CliError::Usage(format!("message {} is not from chat {chat}", message.id)));
        }
        let shown = decrypt(&mut signed.device, &message);
        out.event(&message_json(&signed, &message, &shown), || message_line(&signed, &message, &shown));
    }
    ctx.finish(signed)
}
