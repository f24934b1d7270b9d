//! `<binary> health`: the container's own health check (Docker's HEALTHCHECK runs it inside the
//! image, which has no curl). A plain HTTP/1.0 GET over std, so it costs no dependency.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// GETs `url` (`http://host:port/path`) and succeeds on a 200 answer within `timeout`.
pub fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout).map_err(|e| format!("{address}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    // One write: `write!` on a socket may send the request in pieces, and a server that answers
    // after the first piece and closes makes the next piece fail with a broken pipe.
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    // The status line may arrive in pieces: read until its end (or the server closes).
    let mut head = [0u8; 64];
    let mut filled = 0;
    while filled < head.len() && !head[..filled].contains(&b'\n') {
        match stream.read(&mut head[filled..]).map_err(|e| e.to_string())? {
            0 => break,
            read => filled += read,
        }
    }
    let status_line = String::from_utf8_lossy(&head[..filled]);
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        Some(status) => Err(format!("{url} answered {status}")),
        None => Err(format!("{url} gave no HTTP answer")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use super::probe;

    /// A server that answers one request with `status`, its status line split over two writes.
    fn answering(status: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // Answers only once the whole request head is in, as a real server does.
            let mut request = Vec::new();
            let mut chunk = [0u8; 256];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(read) => request.extend_from_slice(&chunk[..read]),
                }
            }
            // The status line in two pieces, as a busy server may send it.
            let _ = stream.write_all(b"HTTP/1.1 ");
            let _ = stream.flush();
            std::thread::sleep(Duration::from_millis(20));
            let _ = write!(stream, "{status}\r\ncontent-length: 0\r\n\r\n");
        });
        url
    }

    #[test]
    fn healthy_only_on_200() {
        assert_eq!(probe(&answering("200 OK"), Duration::from_secs(2)), Ok(()));
        let refused = probe(&answering("503 Service Unavailable"), Duration::from_secs(2)).unwrap_err();
        assert!(refused.ends_with("answered 503"), "{refused}");
        assert!(probe("https://example.org/", Duration::from_secs(1)).is_err());
        // Nothing listens on port 9 of localhost.
        assert!(probe("http://127.0.0.1:9/healthz", Duration::from_secs(1)).is_err());
    }
}
