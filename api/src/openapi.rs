//! The OpenAPI document as served and committed: poem-openapi's, with each operation's error
//! statuses narrowed to those it can answer with. `ApiError` documents every status the api
//! sends on error; which of them an operation sends follows from what it does (rules below).

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Every error status `ApiError` documents (its `ApiResponse` implementation).
fn statuses_of_api_errors() -> Vec<u16> {
    <crate::error::ApiError as poem_openapi::ApiResponse>::meta().responses.iter().filter_map(|r| r.status).collect()
}

/// The routes that issue or end a session, and check their own credentials rather than an
/// access token; all but logout are rate limited.
const SESSION_ROUTES: [&str; 5] = ["login", "refresh", "refresh_with_header", "refresh_cookie", "logout"];

/// The error statuses `operation_id` (`method`, with or without an access token) can answer with.
fn error_statuses(method: &str, operation_id: &str, authenticated: bool) -> Vec<u16> {
    let changes = method != "get" || operation_id == "refresh_with_header";
    let mut statuses = vec![400, 503];
    match operation_id {
        // A taken email, and the CAPTCHA's verifier being unreachable (503).
        "register" => statuses.extend([409, 413, 429]),
        "login" => statuses.extend([401, 413, 429]),
        id if SESSION_ROUTES.contains(&id) => {
            statuses.extend([401, 403, 409]);
            if id != "logout" {
                statuses.push(429);
            }
        }
        _ if authenticated => {
            statuses.extend([401, 404]);
            if changes {
                // Refusals by the aggregate (not an admin, not yours) and conflicts with state.
                statuses.extend([403, 409]);
            }
        }
        _ => {}
    }
    if method != "get" && method != "head" {
        // Every request body, declared or not, is limited.
        statuses.push(413);
    }
    match operation_id {
        "download_media" => statuses.push(416),
        // The operator's token, when one is configured.
        "metrics" => statuses.push(401),
        _ => {}
    }
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// The document served at `/openapi.json` and committed under `openapi/`.
pub fn spec_json() -> String {
    let generated = crate::app::api_service().spec();
    narrow_error_statuses(&generated).unwrap_or(generated)
}

fn narrow_error_statuses(spec: &str) -> Result<String, serde_json::Error> {
    let mut document: Json = serde_json::from_str(spec)?;
    let api_errors = statuses_of_api_errors();
    for (_, item) in document.get_mut("paths").into_iter().flat_map(Json::entries_mut) {
        for (method, operation) in item.entries_mut() {
            let authenticated = operation.get_mut("security").is_some();
            let operation_id = match operation.get_mut("operationId") {
                Some(Json::Scalar(serde_json::Value::String(id))) => id.clone(),
                _ => continue,
            };
            let Some(responses) = operation.get_mut("responses") else { continue };
            let Json::Object(responses) = responses else { continue };
            // Only operations answering with `ApiError` carry its statuses (health has its own 503).
            let documents_api_errors =
                api_errors.iter().all(|status| responses.iter().any(|(key, _)| *key == status.to_string()));
            if !documents_api_errors {
                continue;
            }
            let keep = error_statuses(method, &operation_id, authenticated);
            responses
                .retain(|(key, _)| key.parse::<u16>().map_or(true, |status| status < 400 || keep.contains(&status)));
        }
    }
    serde_json::to_string_pretty(&document)
}

/// JSON that keeps its objects' key order (serde_json's `Value` sorts them), so the rewritten
/// document differs from poem-openapi's only where statuses were dropped.
enum Json {
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
    Scalar(serde_json::Value),
}

impl Json {
    fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn entries_mut(&mut self) -> impl Iterator<Item = (&str, &mut Json)> {
        let entries = match self {
            Json::Object(entries) => entries.as_mut_slice(),
            _ => &mut [],
        };
        entries.iter_mut().map(|(k, v)| (k.as_str(), v))
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Json::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Scalar(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Json, M::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Json>()? {
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Json>()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Scalar(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Scalar(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Scalar(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        Ok(Json::Scalar(v.into()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::Scalar(v.into()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::Scalar(v.into()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Scalar(serde_json::Value::Null))
    }
}

#[cfg(test)]
mod tests {
    use super::{error_statuses, narrow_error_statuses};

    #[test]
    fn statuses_follow_what_an_operation_does() {
        assert_eq!(error_statuses("get", "list_chats", true), [400, 401, 404, 503]);
        assert_eq!(error_statuses("post", "send_message", true), [400, 401, 403, 404, 409, 413, 503]);
        assert_eq!(error_statuses("get", "download_media", true), [400, 401, 404, 416, 503]);
        assert_eq!(error_statuses("post", "register", false), [400, 409, 413, 429, 503]);
        assert_eq!(error_statuses("get", "refresh_with_header", true), [400, 401, 403, 409, 429, 503]);
    }

    #[test]
    fn rewriting_keeps_key_order_and_other_responses() {
        let spec = r#"{"b":1,"paths":{"/x":{"get":{"operationId":"list_chats","security":[],"responses":{
            "200":{},"400":{},"401":{},"403":{},"404":{},"409":{},"413":{},"416":{},"429":{},"503":{}}}}},"a":[true,null,1.5]}"#;
        let narrowed = narrow_error_statuses(spec).unwrap();
        let compact: String = narrowed.split_whitespace().collect();
        assert_eq!(
            compact,
            r#"{"b":1,"paths":{"/x":{"get":{"operationId":"list_chats","security":[],"responses":{"200":{},"400":{},"401":{},"404":{},"503":{}}}}},"a":[true,null,1.5]}"#
        );
    }
}
