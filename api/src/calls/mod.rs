//! Voice and video calls: the call lifecycle on the `Call` aggregate (ring, accept, reject, hang
//! up, ringing timeout), join tokens for the SFU, and the SFU's reports of who is connected.

pub mod placement;
pub mod queries;
pub mod removal;
pub mod routes;
pub mod sfu_reports;
pub mod sweeper;

use parley_domain::call::CallError;

use crate::error::ApiError;

/// How the `Call` aggregate's refusals reach clients.
pub fn call_error(error: CallError) -> ApiError {
    let message = error.to_string();
    match error {
        CallError::NotFound => ApiError::NotFound,
        CallError::AlreadyExists => ApiError::internal(anyhow::anyhow!("call id collision")),
        CallError::NobodyToCall => ApiError::invalid("nobody_to_call", message),
        CallError::CallOver => ApiError::Conflict { code: "call_over", message },
        CallError::NotRinging => ApiError::Conflict { code: "not_ringing", message },
        CallError::NotInCall => ApiError::Conflict { code: "not_in_call", message },
    }
}
