//! The CLI's one error type. Every failure ends here with a message a person can act on, and a non-zero
//! exit code (see [`CliError::exit_code`]).

use std::path::PathBuf;

use parley_client_core::CoreError;

/// Everything that can make a `parley` command fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// Bad command-line input that clap could not catch (an unparsable id, a missing option).
    #[error("{0}")]
    Usage(String),

    /// The profile has no signed-in account.
    #[error("profile {0:?} is not signed in: run `parley --profile {0} login` (or `register`) first")]
    NotSignedIn(String),

    /// The profile's state file exists but this passphrase does not open it (or it was altered).
    #[error("cannot open the state of profile {0:?}: wrong passphrase, or the file was altered")]
    WrongPassphrase(String),

    /// No passphrase in `PARLEY_PASSPHRASE` and no terminal to ask on.
    #[error("a passphrase is needed to {0}: set PARLEY_PASSPHRASE or run in a terminal")]
    NoPassphrase(&'static str),

    /// An environment variable the CLI reads is unusable (not UTF-8).
    #[error(transparent)]
    Config(#[from] parley_runtime::ConfigError),

    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The state file is not in a format this version understands.
    #[error("state of profile {profile:?} is unreadable: {reason}")]
    BadState { profile: String, reason: String },

    /// The server answered with an error status.
    #[error("server: {status} {code}: {message}")]
    Api { status: u16, code: String, message: String },

    /// The server could not be reached, or answered with something unreadable.
    #[error("cannot talk to the server: {0}")]
    Transport(String),

    /// The end-to-end encryption core refused something.
    #[error("encryption: {0}")]
    Crypto(#[from] CoreError),

    /// A downloaded attachment's hash or size did not match what its message promised.
    #[error("the downloaded file does not match its message ({0}); nothing was written")]
    AttachmentMismatch(String),

    /// Something the user asked for does not exist or is not visible.
    #[error("{0}")]
    NotFound(String),

    /// `verify --expect` did not match.
    #[error("safety number mismatch: expected {expected}, got {actual}")]
    SafetyNumberMismatch { expected: String, actual: String },

    /// `watch` ended because the socket failed or closed.
    #[error("realtime connection: {0}")]
    Realtime(String),
}

impl CliError {
    /// Exit codes: 2 usage, 3 not signed in / passphrase, 4 server said no, 5 unreachable, 6 crypto or
    /// safety mismatch, 1 everything else.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Usage(_) | Self::Config(_) => 2,
            Self::NotSignedIn(_) | Self::WrongPassphrase(_) | Self::NoPassphrase(_) => 3,
            Self::Api { .. } | Self::NotFound(_) => 4,
            Self::Transport(_) | Self::Realtime(_) => 5,
            Self::Crypto(_) | Self::AttachmentMismatch(_) | Self::SafetyNumberMismatch { .. } => 6,
            Self::Io { .. } | Self::BadState { .. } => 1,
        }
    }

    /// An I/O error with what was being done and to which path.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { action, path, source }
    }
}

/// The CLI's result type.
pub(crate) type Result<T, E = CliError> = std::result::Result<T, E>;
