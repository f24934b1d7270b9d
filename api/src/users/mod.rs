//! Profiles: read anyone's, search by name or status, change your own.

pub mod queries;
pub mod routes;
pub mod views;

use parley_domain::user::UserError;

use crate::error::ApiError;

/// How the `User` aggregate's refusals reach clients.
pub fn user_error(error: UserError) -> ApiError {
    match error {
        UserError::InvalidName => ApiError::invalid("invalid_name", error.to_string()),
        UserError::InvalidStatus => ApiError::invalid("invalid_status", error.to_string()),
        UserError::InvalidEmail => ApiError::invalid("invalid_email", error.to_string()),
        UserError::AlreadyRegistered => email_taken(),
        UserError::NotFound => ApiError::NotFound,
        UserError::NotOwner => ApiError::Forbidden(error.to_string()),
    }
}

pub fn email_taken() -> ApiError {
    ApiError::Conflict { code: "email_taken", message: "an account with this email already exists".into() }
}
