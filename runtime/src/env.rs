//! Settings from environment variables. Every setting has a default that runs a local stack
//! unconfigured; a value that is set but wrong (not a number, out of range) stops the process
//! with a message naming the variable, never silently becomes something else.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::Secret;

/// Why a process refused its configuration. The message names the variable; it never contains
/// the value of a secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("{name}: {value} is not between {min} and {max}")]
    OutOfRange { name: &'static str, value: String, min: String, max: String },
    #[error("{name}: required {when}")]
    Missing { name: &'static str, when: &'static str },
}

/// The variables a process was started with, read once. Tests build one from pairs instead of
/// changing the process environment (which every test thread shares).
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, OsString>,
}

impl fmt::Debug for Env {
    // Values are not shown: the environment holds secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env").field("vars", &self.vars.len()).finish()
    }
}

impl Env {
    pub fn from_process() -> Self {
        Self { vars: std::env::vars_os().filter_map(|(name, value)| Some((name.into_string().ok()?, value))).collect() }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { vars: pairs.into_iter().map(|(name, value)| (name.to_owned(), OsString::from(value))).collect() }
    }

    /// The variable's value; unset, empty and blank all mean "use the default".
    pub fn optional(&self, name: &'static str) -> Result<Option<&str>, ConfigError> {
        let Some(value) = self.vars.get(name) else { return Ok(None) };
        let text = value.to_str().ok_or(ConfigError::Invalid { name, message: "is not valid UTF-8".into() })?;
        Ok(Some(text).filter(|text| !text.trim().is_empty()))
    }

    pub fn string(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        Ok(self.optional(name)?.unwrap_or(default).to_owned())
    }

    pub fn secret(&self, name: &'static str, default: &str) -> Result<Secret, ConfigError> {
        self.string(name, default).map(Secret::new)
    }

    pub fn optional_secret(&self, name: &'static str) -> Result<Option<Secret>, ConfigError> {
        Ok(self.optional(name)?.map(Secret::new))
    }

    pub fn required(&self, name: &'static str, when: &'static str) -> Result<String, ConfigError> {
        self.optional(name)?.map(str::to_owned).ok_or(ConfigError::Missing { name, when })
    }

    pub fn parse<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(name)? {
            Some(text) => {
                text.trim().parse().map_err(|error: T::Err| ConfigError::Invalid { name, message: error.to_string() })
            }
            None => Ok(default),
        }
    }

    /// A number that must lie in `range` (the default too: a wrong default is a bug here).
    pub fn parse_within<T>(&self, name: &'static str, default: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display,
        T::Err: fmt::Display,
    {
        let value = self.parse(name, default)?;
        if range.contains(&value) {
            return Ok(value);
        }
        Err(ConfigError::OutOfRange {
            name,
            value: value.to_string(),
            min: range.start().to_string(),
            max: range.end().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{ConfigError, Env};

    #[test]
    fn unset_and_blank_take_the_default() {
        let env = Env::from_pairs([("BLANK", "  "), ("EMPTY", "")]);
        assert_eq!(env.string("BLANK", "d").unwrap(), "d");
        assert_eq!(env.parse::<u32>("EMPTY", 7).unwrap(), 7);
        assert_eq!(env.parse::<u32>("UNSET", 8).unwrap(), 8);
    }

    #[test]
    fn a_value_outside_its_range_is_refused_naming_the_variable() {
        let env = Env::from_pairs([("PARLEY_X", "0"), ("PARLEY_Y", "12")]);
        let error = env.parse_within::<u64>("PARLEY_X", 5, 1..=10).unwrap_err();
        assert!(matches!(error, ConfigError::OutOfRange { name: "PARLEY_X", .. }));
        assert_eq!(error.to_string(), "PARLEY_X: 0 is not between 1 and 10");
        assert!(env.parse_within::<u64>("PARLEY_Y", 5, 1..=10).is_err());
        assert_eq!(env.parse_within::<u64>("PARLEY_Z", 5, 1..=10).unwrap(), 5);
    }

    #[test]
    fn a_value_that_does_not_parse_is_refused_naming_the_variable() {
        let env = Env::from_pairs([("PARLEY_N", "ten")]);
        let error = env.parse::<u64>("PARLEY_N", 1).unwrap_err();
        assert!(error.to_string().starts_with("PARLEY_N: "), "{error}");
    }

    #[test]
    fn secrets_and_the_environment_never_print_their_values() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u:hunter2@db/p")]);
        let url = env.secret("DATABASE_URL", "").unwrap();
        assert!(!format!("{url:?} {url} {env:?}").contains("hunter2"));
        assert!(env.required("PARLEY_S3_ACCESS_KEY_ID", "with PARLEY_S3_BUCKET").is_err());
    }
}
