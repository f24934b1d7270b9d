//! Arguments in, results out: JSON text, UUID strings, times and keys from JavaScript.

use parley_client_core::DeviceAddress;
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

use crate::Error;

/// Parses `json` as `T`; the error names the argument.
pub(crate) fn from_json<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|error| Error::invalid_argument(what, error))
}

/// `value` as JSON text.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
    Ok(serde_json::to_string(value)?)
}

/// A UUID argument.
pub(crate) fn uuid(what: &str, text: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|error| Error::invalid_argument(what, error))
}

/// A device address given as two UUID arguments.
pub(crate) fn address(user_id: &str, device_id: &str) -> Result<DeviceAddress, Error> {
    Ok(DeviceAddress::new(uuid("user id", user_id)?, uuid("device id", device_id)?))
}

/// A JavaScript number that must be a whole number of at least zero (a time in seconds, a count).
/// Fractions are cut off (`Date.now() / 1000` is fine).
pub(crate) fn whole_number(what: &str, value: f64) -> Result<u64, Error> {
    // 2^53: beyond it JavaScript numbers are no longer exact integers.
    const MAX_SAFE: f64 = 9_007_199_254_740_992.0;
    if !value.is_finite() || !(0.0..MAX_SAFE).contains(&value) {
        return Err(Error::invalid_argument(what, format!("{value} is not a number from 0 to 2^53")));
    }
    // In range and finite: the conversion is exact after truncation.
    Ok(value.trunc() as u64)
}

/// A 32-byte key argument.
pub(crate) fn key32(what: &str, bytes: &[u8]) -> Result<[u8; 32], Error> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| Error::invalid_argument(what, format!("expected 32 bytes, got {}", bytes.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_refuse_what_is_not_one() {
        assert_eq!(whole_number("t", 1_800_000_000.75).expect("time"), 1_800_000_000);
        assert_eq!(whole_number("t", 0.0).expect("zero"), 0);
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert_eq!(whole_number("t", bad).expect_err("refused").code(), "invalid_argument");
        }
    }

    #[test]
    fn keys_must_have_32_bytes() {
        assert!(key32("key", &[0; 32]).is_ok());
        assert_eq!(key32("key", &[0; 31]).expect_err("short").code(), "invalid_argument");
    }
}
