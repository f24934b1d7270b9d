//! Every request has an id: the client's `X-Request-Id` when it is a sensible token, else a new
//! one. It is answered in `X-Request-Id`, carried by the request's log lines, and stored in the
//! metadata of every event the request commits, so an event leads back to its request's logs.

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task serves (`None` in background tasks).
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client's id is kept when it is 1 to 64 characters of `[A-Za-z0-9._-]` (anything else could
/// forge log lines or bloat the event store).
fn accepted(offered: &str) -> bool {
    (1..=64).contains(&offered.len()) && offered.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

pub async fn assign<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let id = req
        .header(HEADER)
        .filter(|offered| accepted(offered))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let request_id = id.clone();
    // The span is made inside the recording scope: whether it is recorded is decided there.
    let traced = async move {
        let span = crate::ops::traces::request_span(req.method(), req.uri().path(), &request_id);
        let answer = async move {
            let response = next.call(req).await.map(IntoResponse::into_response);
            if let Ok(response) = &response {
                tracing::debug!(status = response.status().as_u16(), "answered");
            }
            response
        };
        let response = REQUEST_ID.scope(request_id, answer.instrument(span.clone())).await;
        if let Ok(response) = &response {
            crate::ops::traces::record_response(&span, response);
        }
        response
    };
    let mut response = parley_runtime::traces::recorded(parley_runtime::traces::sample(), traced).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::accepted;

    #[test]
    fn only_plain_tokens_are_taken_from_clients() {
        assert!(accepted("req-42.retry_1"));
        assert!(!accepted(""));
        assert!(!accepted("with space"));
        assert!(!accepted("line\nbreak"));
        assert!(!accepted(&"x".repeat(65)));
    }
}
