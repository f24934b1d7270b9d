//! The server span of every HTTP request: named `<method> <route template>` (the OpenAPI path,
//! never the raw one, so ids stay out of span names), with the route, the status and the
//! caller's user id as attributes. Everything a request does (commands, commits) nests under it, and the events it
//! commits carry its trace context on to the relay, the projectors and the WebSocket frames.

use std::sync::OnceLock;

use poem::http::Method;
use poem::Response;
use tracing::field::Empty;
use tracing::Span;
use uuid::Uuid;

pub fn request_span(method: &Method, path: &str, request_id: &str) -> Span {
    let route = route_of(method, path);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };
    tracing::info_span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty,
        user.id = Empty,
        request_id = %request_id,
    )
}

/// Records the answer's status on the request's span.
pub fn record_response(span: &Span, response: &Response) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Records who is calling on the current request's span.
pub fn record_caller(user_id: Uuid) {
    Span::current().record("user.id", tracing::field::display(user_id));
}

/// One path template of our spec, split at `/`; `None` stands for a `{parameter}`.
struct Template {
    method: Method,
    segments: Vec<Option<String>>,
    route: String,
}

/// The spec's path template `path` falls under (`/ws` too), read from our spec once. A span's
/// name is fixed when it starts, before the router has run, hence this second, tiny router.
fn route_of(method: &Method, path: &str) -> Option<&'static str> {
    static TEMPLATES: OnceLock<Vec<Template>> = OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&crate::app::openapi_json()).unwrap_or_default();
        let mut templates =
            vec![Template { method: Method::GET, segments: vec![Some("ws".to_owned())], route: "/ws".to_owned() }];
        for (route, operations) in spec["paths"].as_object().into_iter().flatten() {
            let segments: Vec<Option<String>> = route
                .trim_start_matches('/')
                .split('/')
                .map(|segment| (!segment.starts_with('{')).then(|| segment.to_owned()))
                .collect();
            for verb in operations.as_object().into_iter().flat_map(|o| o.keys()) {
                if let Ok(method) = Method::from_bytes(verb.to_ascii_uppercase().as_bytes()) {
                    templates.push(Template { method, segments: segments.clone(), route: route.clone() });
                }
            }
        }
        // Literal segments before parameters: `/chats/join` is not `/chats/{id}`.
        templates.sort_by_key(|t| t.segments.iter().map(|s| s.is_none()).collect::<Vec<bool>>());
        templates
    });
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    templates
        .iter()
        .find(|t| {
            t.method == *method
                && t.segments.len() == segments.len()
                && t.segments.iter().zip(&segments).all(|(want, got)| want.as_deref().is_none_or(|w| w == *got))
        })
        .map(|t| t.route.as_str())
}

#[cfg(test)]
mod tests {
    use poem::http::Method;

    #[test]
    fn requests_are_named_by_their_path_templates() {
        let id = "01a24b7a-79d4-71ef-adf2-fd5b80cbad06";
        let route = |method: &Method, path: &str| super::route_of(method, path);
        assert_eq!(route(&Method::POST, &format!("/chats/{id}/messages")), Some("/chats/{id}/messages"));
        assert_eq!(route(&Method::POST, "/chats/join"), Some("/chats/join"));
        assert_eq!(route(&Method::GET, "/ws"), Some("/ws"));
        assert_eq!(route(&Method::DELETE, &format!("/chats/{id}/messages")), None);
        assert_eq!(route(&Method::GET, "/app/index.html"), None);
    }
}
