//! Parley's Rust SDK: a client for the HTTP API, generated from `openapi/openapi.json` by
//! progenitor (`generated.rs`, regenerated with `cargo run -p parley-sdk-gen`), and the realtime
//! frames of `GET /ws` ([`frames`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use parley_sdk::Client;
//!
//! let client = Client::with_token("http://127.0.0.1:8080", "<access token>")?;
//! let chats = client.list_chats().limit(20).send().await?.into_inner();
//! for chat in &chats.items {
//!     let page = client.list_messages().id(chat.id).send().await?.into_inner();
//!     # let _ = page;
//! }
//! // After `POST /auth/refresh`, every clone of the client sends the new token:
//! client.set_access_token("<new access token>")?;
//! # Ok(()) }
//! ```
//!
//! Each operation is a builder: set its parameters, then `.send().await`, which gives a
//! [`ResponseValue`] (status, headers, `into_inner()`) or an [`Error`] (an error status's body is
//! `Error::ErrorResponse` with the API's error type).

mod auth;
pub mod frames;

#[rustfmt::skip]
// progenitor's output, as generated (its client builder unwraps).
#[allow(clippy::unwrap_used, unreachable_pub)]
mod generated;

pub use auth::{Auth, InvalidToken};
pub use generated::{builder, prelude, types, ByteStream, Client, ClientInfo, Error, ResponseValue};

use std::time::Duration;

impl Client {
    /// A client for the API at `base_url` (scheme, host, port; no trailing slash) that sends
    /// `access_token` as `Authorization: Bearer`.
    ///
    /// Unlike the generated `Client::new`, whose 15 s limit covers a whole request (too short for
    /// media), only connecting and each read are bounded here.
    pub fn with_token(base_url: &str, access_token: &str) -> Result<Self, InvalidToken> {
        Ok(Self::with_auth(base_url, Auth::bearer(access_token)?))
    }

    /// A client without a token (register, log in, refresh); set one later with
    /// [`Client::set_access_token`].
    pub fn anonymous(base_url: &str) -> Self {
        Self::with_auth(base_url, Auth::none())
    }

    /// A client with `auth` and this SDK's default HTTP settings; for your own `reqwest::Client`
    /// use the generated `Client::new_with_client(base_url, http, auth)`.
    pub fn with_auth(base_url: &str, auth: Auth) -> Self {
        Self::new_with_client(base_url, default_http_client(), auth)
    }

    /// Replaces the access token this client (and its clones) send.
    pub fn set_access_token(&self, access_token: &str) -> Result<(), InvalidToken> {
        self.auth().set(Some(access_token))
    }

    /// The token holder this client (and its clones) share.
    pub fn auth(&self) -> &Auth {
        ClientInfo::inner(self)
    }
}

#[expect(clippy::expect_used, reason = "a builder with only timeouts set has nothing that can fail")]
fn default_http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .read_timeout(Duration::from_secs(60))
        .build()
        .expect("a reqwest client with only timeouts set builds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers one HTTP request with `body` (JSON, 200) and returns the request's head.
    async fn one_request(listener: tokio::net::TcpListener, body: &'static str) -> String {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the client closed before its request was complete");
            head.extend_from_slice(&buf[..n]);
        }
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8(head).unwrap().to_ascii_lowercase()
    }

    #[tokio::test]
    async fn the_client_sends_its_token_and_reads_nulls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // A profile as the server sends it: optional fields come as `null` (declared nullable).
        let server = tokio::spawn(one_request(
            listener,
            r#"{"id":"0190a3a0-0000-7000-8000-000000000003","name":"Ada","status":"","avatar_media_id":null,"avatar_url":null,"created_at":"2026-11-28T10:00:00Z"}"#,
        ));
        let client = Client::with_token(&base, "first").unwrap();
        client.clone().set_access_token("second").unwrap();
        let id = uuid::Uuid::parse_str("0190a3a0-0000-7000-8000-000000000003").unwrap();
        let user = client.get_user().id(id).send().await.unwrap().into_inner();
        assert_eq!((user.name.as_str(), user.avatar_media_id, user.email), ("Ada", None, None));
        let head = server.await.unwrap();
        assert!(head.starts_with(&format!("get /users/{id} ")), "{head}");
        assert!(head.contains("\r\nauthorization: bearer second\r\n"), "the clone's new token is shared: {head}");
    }

    #[tokio::test]
    async fn an_anonymous_client_sends_no_token() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(one_request(listener, r#"{"status":"ok"}"#));
        let client = Client::anonymous(&base);
        assert!(!client.auth().is_set());
        let _ = client.health().send().await;
        assert!(!server.await.unwrap().contains("authorization:"));
    }

    #[test]
    fn generated_types_read_what_the_server_sends() {
        let page: types::MessagePage = serde_json::from_str(
            r#"{"items":[{"id":"0190a3a0-0000-7000-8000-000000000001","chat_id":"0190a3a0-0000-7000-8000-000000000002","sender_id":"0190a3a0-0000-7000-8000-000000000003","seq":1,"client_msg_id":"c-1","ciphertext":null,"algorithm":"parley.megolm.v1","media_ids":[],"reply_to":null,"created_at":"2026-11-28T10:00:00+00:00","deleted":true}],"next_cursor":null}"#,
        )
        .unwrap();
        assert!(page.items[0].deleted && page.items[0].ciphertext.is_none() && page.next_cursor.is_none());
        let request = types::SendMessageRequest::builder()
            .client_msg_id("c-2")
            .ciphertext("aGVsbG8=")
            .algorithm("parley.megolm.v1");
        let request: types::SendMessageRequest = request.try_into().unwrap();
        assert_eq!(serde_json::to_value(&request).unwrap()["client_msg_id"], "c-2");
        assert!(Auth::bearer("bad\ntoken").is_err());
    }

    /// Uploads take any `Into<reqwest::Body>` (bytes, or a stream via `reqwest::Body::wrap_stream`);
    /// downloads give a `ByteStream`. Built, not sent.
    #[allow(dead_code)]
    async fn media_signatures_compile(client: &Client, id: uuid::Uuid) -> Result<(), Error<types::ErrorBody>> {
        let media: ResponseValue<types::MediaView> =
            client.upload_media().content_type("image/png").body(vec![0u8; 4]).send().await?;
        let download: ResponseValue<ByteStream> =
            client.download_media().id(media.id).range("bytes=0-1").send().await?;
        let _stream: ByteStream = download.into_inner();
        let _ = id;
        Ok(())
    }
}
