//! Serde helpers shared by event and command types.

use serde::{Deserialize, Deserializer};

/// Distinguishes "field absent" (`None`) from "field set to null" (`Some(None)`).
///
/// Use with `#[serde(default, deserialize_with = "double_option")]`.
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
