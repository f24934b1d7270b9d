//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `parley`: an end-to-end encrypted Parley client for the terminal.
///
/// Secrets (tokens, keys) are kept encrypted under a passphrase: set PARLEY_PASSPHRASE or type it when
/// asked. Account passwords come from PARLEY_PASSWORD or a prompt, never from the command line.
#[derive(Debug, Parser)]
#[command(name = "parley", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Print JSON for scripts (one object per line for `watch`).
    #[arg(long, global = true)]
    pub json: bool,

    /// Which identity to act as; each profile is its own device with its own keys.
    #[arg(long, global = true, env = "PARLEY_PROFILE", default_value = "default")]
    pub profile: String,

    /// The Parley server (for `register` and `login`; afterwards the profile remembers it).
    #[arg(long, global = true, env = "PARLEY_SERVER")]
    pub server: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

/// The default server when neither `--server` nor `PARLEY_SERVER` nor a profile says otherwise.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create an account and make this profile its first device.
    Register {
        name: String,
        email: String,
        /// A profile picture. Avatars are public profile data and are uploaded UNENCRYPTED.
        #[arg(long)]
        avatar: Option<PathBuf>,
        /// A name for this device ("laptop").
        #[arg(long)]
        device_name: Option<String>,
    },
    /// Sign in: this profile becomes a new device of the account.
    Login {
        email: String,
        #[arg(long)]
        device_name: Option<String>,
    },
    /// Sign out and remove this device (its keys are deleted on the server and here).
    Logout,
    /// List your devices, or remove one.
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
    },
    /// Find users.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Your chats, newest first, with the last message decrypted where possible.
    Chats,
    /// Create and manage chats.
    Chat {
        #[command(subcommand)]
        action: ChatAction,
    },
    /// Send an encrypted text message.
    Send {
        chat: String,
        /// Free text: may start with `-` ("-1", "--- notes ---").
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
    /// Encrypt a file while uploading it, and send it.
    SendFile {
        chat: String,
        path: PathBuf,
        #[arg(long, default_value = "")]
        caption: String,
        /// Media type of the file (guessed from its extension otherwise).
        #[arg(long)]
        content_type: Option<String>,
    },
    /// Show a chat's history, decrypted.
    Read {
        chat: String,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Download and decrypt a file message's attachment.
    Download {
        chat: String,
        message_id: String,
        /// Where to write it (default: the file's name in the current directory).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Delete a message.
    Delete {
        chat: String,
        message_id: String,
        #[arg(long = "for", value_enum)]
        scope: DeleteScope,
    },
    /// Follow live events: messages (decrypted), typing, read receipts; keeps keys up to date.
    Watch(WatchArgs),
    /// Show the safety number with a user, to compare out of band.
    Verify {
        user: String,
        /// Exit non-zero unless the safety number is this one (spaces ignored).
        #[arg(long)]
        expect: Option<String>,
        /// Also accept the user's changed device keys (after you compared the number).
        #[arg(long)]
        accept: bool,
    },
    /// Try to decrypt raw messages (JSON objects, one per line on stdin, as `read --json --raw` prints them).
    #[command(hide = true)]
    DecryptRaw { chat: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevicesAction {
    /// Remove one of your devices (signs it out).
    Remove { device_id: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersAction {
    /// Users whose name or status contains TEXT.
    Search {
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChatAction {
    /// Create a direct chat or a group.
    New(NewChat),
    /// Add members to a group (admin).
    Add {
        chat: String,
        #[arg(required = true)]
        users: Vec<String>,
    },
    /// Remove a member from a group (admin).
    Remove { chat: String, user: String },
    /// Leave a chat.
    Leave { chat: String },
    /// Make an invite code for a group (admin).
    Invite { chat: String },
    /// Join a group with an invite code.
    Join {
        /// Codes are base64url, so one in 64 starts with `-`.
        #[arg(allow_hyphen_values = true)]
        code: String,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct NewChatKind {
    /// The other user of a direct chat (id, or exact name or email).
    #[arg(long)]
    pub direct: Option<String>,
    /// The name of a new group.
    #[arg(long, requires = "members")]
    pub group: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct NewChat {
    #[command(flatten)]
    pub kind: NewChatKind,
    /// The group's first members, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DeleteScope {
    Me,
    Everyone,
}

#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Stop after this many chat messages were shown.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("parley").chain(args.iter().copied()))
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = parse(&["send", "--profile", "bob", "CHAT", "hello world", "--json"]).expect("parses");
        assert!(cli.json);
        assert_eq!(cli.profile, "bob");
        assert!(matches!(cli.command, Command::Send { ref chat, ref text } if chat == "CHAT" && text == "hello world"));
    }

    #[test]
    fn chat_new_takes_exactly_one_kind() {
        let cli = parse(&["chat", "new", "--group", "Team", "--members", "a,b,c"]).expect("group");
        let Command::Chat { action: ChatAction::New(new) } = cli.command else { panic!("not chat new") };
        assert_eq!(new.kind.group.as_deref(), Some("Team"));
        assert_eq!(new.members, ["a", "b", "c"]);

        let cli = parse(&["chat", "new", "--direct", "bob"]).expect("direct");
        let Command::Chat { action: ChatAction::New(new) } = cli.command else { panic!("not chat new") };
        assert_eq!(new.kind.direct.as_deref(), Some("bob"));

        assert!(parse(&["chat", "new"]).is_err(), "one of --direct/--group is required");
        assert!(parse(&["chat", "new", "--direct", "a", "--group", "g", "--members", "b"]).is_err());
        assert!(parse(&["chat", "new", "--group", "g"]).is_err(), "a group needs --members");
    }

    #[test]
    fn delete_needs_a_scope() {
        let cli = parse(&["delete", "C", "M", "--for", "everyone"]).expect("parses");
        assert!(matches!(cli.command, Command::Delete { scope: DeleteScope::Everyone, .. }));
        assert!(parse(&["delete", "C", "M"]).is_err());
        assert!(parse(&["delete", "C", "M", "--for", "nobody"]).is_err());
    }

    #[test]
    fn watch_and_read_options() {
        let cli = parse(&["watch", "--count", "3", "--timeout", "10"]).expect("watch");
        assert!(matches!(cli.command, Command::Watch(WatchArgs { count: Some(3), timeout: Some(10) })));
        let cli = parse(&["read", "C"]).expect("read");
        assert!(matches!(cli.command, Command::Read { limit: 50, .. }));
        assert!(parse(&["read", "C", "--limit", "many"]).is_err());
    }

    #[test]
    fn verify_devices_and_chat_membership() {
        let cli = parse(&["verify", "bob", "--expect", "12345 67890"]).expect("verify");
        assert!(
            matches!(cli.command, Command::Verify { expect: Some(ref e), accept: false, .. } if e == "12345 67890")
        );
        let cli = parse(&["devices"]).expect("devices");
        assert!(matches!(cli.command, Command::Devices { action: None }));
        let cli = parse(&["devices", "remove", "D"]).expect("devices remove");
        assert!(matches!(cli.command, Command::Devices { action: Some(DevicesAction::Remove { .. }) }));
        assert!(parse(&["chat", "add", "C"]).is_err(), "chat add needs users");
        let cli = parse(&["chat", "add", "C", "u1", "u2"]).expect("chat add");
        assert!(matches!(cli.command, Command::Chat { action: ChatAction::Add { ref users, .. } } if users.len() == 2));
    }

    #[test]
    fn free_text_and_invite_codes_may_start_with_a_hyphen() {
        let cli = parse(&["chat", "join", "-aRXujjTB4bmfPOKRRjusQ"]).expect("join");
        assert!(
            matches!(cli.command, Command::Chat { action: ChatAction::Join { ref code } } if code == "-aRXujjTB4bmfPOKRRjusQ")
        );
        let cli = parse(&["send", "CHAT", "-1", "--json"]).expect("send");
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Send { ref text, .. } if text == "-1"));
        let cli = parse(&["users", "search", "--x"]).expect("search");
        assert!(matches!(cli.command, Command::Users { action: UsersAction::Search { ref text } } if text == "--x"));
        // Options before the value still count as options.
        let cli = parse(&["send", "--json", "CHAT", "hi"]).expect("option first");
        assert!(cli.json);
    }

    #[test]
    fn register_never_takes_a_password_argument() {
        assert!(parse(&["register", "Ada", "ada@example.org"]).is_ok());
        assert!(parse(&["register", "Ada", "ada@example.org", "secret"]).is_err());
        let cli = parse(&["register", "Ada", "a@b", "--avatar", "me.png"]).expect("avatar");
        assert!(matches!(cli.command, Command::Register { avatar: Some(_), .. }));
    }
}
