//! Values that must never reach a log line, an error message or `Debug` output.

use std::fmt;

/// A database URL, a signing key, an API secret: printing one (`{:?}` or `{}`) shows a
/// placeholder; only [`Secret::expose`] gives the value, at the one place that needs it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**redacted**")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn a_secret_prints_as_a_placeholder() {
        let secret = Secret::new("postgres://parley:hunter2@db/parley");
        assert!(!format!("{secret:?} {secret} {secret:#?}").contains("hunter2"));
        assert_eq!(secret.expose(), "postgres://parley:hunter2@db/parley");
    }
}
