//! Requests the HTTP layer refuses before any route runs (malformed framing: an empty or
//! non-numeric `Content-Length`, an unparsable header) are answered by hyper with a bare 400. Every
//! client of ours reads errors as JSON, so those answers get the same JSON error body as any
//! other 400. hyper closes such a connection after the answer, so the body is all that follows.

use std::io::{IoSlice, Result as IoResult};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How hyper's own refusal of an unparsable request begins.
const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";

/// The error body of a request whose framing could not be parsed.
fn error_body() -> Vec<u8> {
    let message = "the request's HTTP framing is malformed (e.g. an empty or non-numeric Content-Length)";
    crate::error::error_body("invalid_request", message).to_string().into_bytes()
}

/// `written` with a JSON error body, if it is hyper's bodiless 400 (our own 400s always carry a
/// `Content-Type`).
fn with_json_body(written: &[u8]) -> Option<Vec<u8>> {
    if !written.starts_with(BARE_400) || !written.ends_with(b"\r\n\r\n") {
        return None;
    }
    let head = String::from_utf8_lossy(written).to_ascii_lowercase();
    let empty_length = "content-length: 0\r\n";
    if head.contains("\r\ncontent-type:") || !head.contains(empty_length) {
        return None;
    }
    let body = error_body();
    let at = head.find(empty_length)?;
    let mut answer = Vec::with_capacity(written.len() + body.len() + 48);
    answer.extend_from_slice(&written[..at]);
    answer
        .extend_from_slice(format!("content-type: application/json\r\ncontent-length: {}\r\n", body.len()).as_bytes());
    answer.extend_from_slice(&written[at + empty_length.len()..]);
    answer.extend_from_slice(&body);
    Some(answer)
}

/// An acceptor whose connections give hyper's bare 400s a JSON body.
pub struct JsonFramingErrors<A>(pub A);

impl<A: Acceptor> Acceptor for JsonFramingErrors<A> {
    type Io = Connection<A::Io>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.0.accept().await?;
        Ok((Connection { inner: io, pending: Vec::new(), sent: 0 }, local, remote, scheme))
    }
}

pub struct Connection<T> {
    inner: T,
    /// A rewritten answer still being written (`sent` bytes of it are out).
    pending: Vec<u8>,
    sent: usize,
}

impl<T: AsyncWrite + Unpin> Connection<T> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes the rewritten answer over: hyper is told all of `written` went out.
    fn write_rewritten(&mut self, cx: &mut Context<'_>, answer: Vec<u8>, written: usize) -> Poll<IoResult<usize>> {
        self.pending = answer;
        self.sent = 0;
        match self.poll_pending(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            // The rest goes out on the next write or flush.
            _ => Poll::Ready(Ok(written)),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Connection<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<IoResult<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Connection<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<IoResult<usize>> {
        ready!(self.poll_pending(cx))?;
        match with_json_body(buf) {
            Some(answer) => self.write_rewritten(cx, answer, buf.len()),
            None => Pin::new(&mut self.inner).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<IoResult<usize>> {
        ready!(self.poll_pending(cx))?;
        let starts_bare_400 = bufs.iter().find(|b| !b.is_empty()).is_some_and(|b| b.starts_with(BARE_400));
        if starts_bare_400 {
            let written: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            if let Some(answer) = with_json_body(&written) {
                return self.write_rewritten(cx, answer, written.len());
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<IoResult<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bare_400_gets_a_json_body_and_nothing_else_changes() {
        let bare = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(with_json_body(bare).unwrap_or_default()).unwrap_or_default();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains("content-type: application/json\r\ncontent-length: "), "{answer}");
        assert!(head.ends_with("date: x"), "{answer}");
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        assert_eq!(parsed["error"]["code"], "invalid_request");
        let declared: usize =
            head.split("content-length: ").nth(1).and_then(|l| l.lines().next()?.parse().ok()).unwrap_or(0);
        assert_eq!(declared, body.len());

        // Our own 400s (JSON already), other statuses, and bodies are left alone.
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(with_json_body(ours).is_none());
        assert!(with_json_body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(with_json_body(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}").is_none());
    }
}
