//! Errors as JavaScript sees them: an `Error` named `ParleyCoreError` with the core's message, a stable
//! `code` and, for some codes, structured `details`.

use parley_client_core::CoreError;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;

/// A failure of a binding call. In JavaScript it is thrown as an `Error` whose `name` is
/// `"ParleyCoreError"`, whose `message` is the core's message and which carries `code` (see
/// [`Error::code`]) and, when there is more to say, `details` (a plain object).
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    code: &'static str,
    message: String,
    details: Option<Value>,
}

impl Error {
    /// A bad argument from the caller (unparsable JSON, a bad UUID, a key of the wrong length...).
    pub(crate) fn invalid_argument(what: &str, reason: impl std::fmt::Display) -> Self {
        Self { code: "invalid_argument", message: format!("invalid {what}: {reason}"), details: None }
    }

    /// A streaming object used after `finish()`.
    pub(crate) fn finished(what: &str) -> Self {
        Self { code: "finished", message: format!("this {what} has already finished"), details: None }
    }

    /// The stable machine-readable kind: one of `invalid_argument`, `finished`, `malformed`, `bad_signature`,
    /// `unknown_devices`, `unresolved_key_change`, `unsupported_algorithm`, `envelope_mismatch`,
    /// `missing_one_time_key`, `olm`, `megolm`, `missing_room_key`, `no_outbound_session`,
    /// `attachment_hash_mismatch`, `attachment_size_mismatch`, `attachment_too_large`, `state_decryption`,
    /// `random`, `internal`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message (the core's own for core errors).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured details: `{devices}` for `unknown_devices`; `{device}` for `unresolved_key_change` and
    /// `missing_one_time_key`; `{what, device}` for `bad_signature`; `{chat_id, session_id, sender}` for
    /// `missing_room_key`; `{expected, actual}` for `attachment_size_mismatch`.
    pub fn details(&self) -> Option<&Value> {
        self.details.as_ref()
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

impl From<CoreError> for Error {
    fn from(error: CoreError) -> Self {
        let message = error.to_string();
        let (code, details) = match error {
            CoreError::Malformed { .. } => ("malformed", None),
            CoreError::BadSignature { what, device } => {
                ("bad_signature", Some(json!({"what": what, "device": device})))
            }
            CoreError::UnknownDevices(devices) => ("unknown_devices", Some(json!({ "devices": devices }))),
            CoreError::UnresolvedKeyChange(device) => ("unresolved_key_change", Some(json!({ "device": device }))),
            CoreError::UnsupportedAlgorithm(_) => ("unsupported_algorithm", None),
            CoreError::EnvelopeMismatch(_) => ("envelope_mismatch", None),
            CoreError::MissingOneTimeKey(device) => ("missing_one_time_key", Some(json!({ "device": device }))),
            CoreError::Olm(_) => ("olm", None),
            CoreError::Megolm(_) => ("megolm", None),
            CoreError::MissingRoomKey { chat_id, session_id, sender } => {
                ("missing_room_key", Some(json!({"chat_id": chat_id, "session_id": session_id, "sender": sender})))
            }
            CoreError::NoOutboundSession(_) => ("no_outbound_session", None),
            CoreError::AttachmentHashMismatch => ("attachment_hash_mismatch", None),
            CoreError::AttachmentSizeMismatch { expected, actual } => {
                ("attachment_size_mismatch", Some(json!({"expected": expected, "actual": actual})))
            }
            CoreError::AttachmentTooLarge => ("attachment_too_large", None),
            CoreError::StateDecryption => ("state_decryption", None),
            CoreError::Random(_) => ("random", None),
        };
        Self { code, message, details }
    }
}

impl From<serde_json::Error> for Error {
    /// Serialising the core's own types does not fail; should it ever, it is reported, not a panic.
    fn from(error: serde_json::Error) -> Self {
        Self { code: "internal", message: format!("could not serialise the result: {error}"), details: None }
    }
}

mod js {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        /// The global `Error` class.
        pub type Error;

        #[wasm_bindgen(constructor)]
        pub fn new(message: &str) -> Error;

        #[wasm_bindgen(method, setter = name)]
        pub fn set_name(this: &Error, name: &str);

        #[wasm_bindgen(method, setter = code)]
        pub fn set_code(this: &Error, code: &str);

        #[wasm_bindgen(method, setter = details)]
        pub fn set_details(this: &Error, details: JsValue);

        #[wasm_bindgen(js_namespace = JSON, js_name = parse, catch)]
        pub fn json_parse(text: &str) -> Result<JsValue, JsValue>;
    }
}

impl From<Error> for JsValue {
    fn from(error: Error) -> Self {
        let object = js::Error::new(&error.message);
        object.set_name("ParleyCoreError");
        object.set_code(error.code);
        if let Some(details) = error.details.and_then(|details| js::json_parse(&details.to_string()).ok()) {
            object.set_details(details);
        }
        object.into()
    }
}
