//! Which protocol a connection to the HTTP port speaks, read from its first
//! bytes without consuming them: HTTP/2 with prior knowledge (h2c) when they
//! are the HTTP/2 connection preface, else HTTP/1.1.
//!
//! Why both on one port: an edge that multiplexes (Envoy and the Gateway API
//! implementations built on it speak h2c to a backend whose Service port
//! says `appProtocol: kubernetes.io/h2c`) sends many requests per read and
//! takes many answers per write, so a request, and above all a refusal at
//! the door during a spike, costs the gateway far fewer system calls than
//! one HTTP/1.1 request on a kept-alive connection (docs/benchmarks.md,
//! "HTTP/2 from the edge"). ingress-nginx, curl and browsers over plain
//! HTTP keep speaking HTTP/1.1 and are served exactly as before.
//!
//! Hand-written rather than hyper-util's `auto::Builder`: that one reads the
//! preface into its own buffer with no timer, so a client that connects and
//! sends nothing would hold its connection forever, where the HTTP/1 header
//! read timeout closes it; and it wraps every later read of an HTTP/1
//! connection in a rewind buffer. A peek costs one system call per
//! connection and leaves hyper's own read path as it was.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

/// What every HTTP/2 connection starts with (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait for the rest of a preface that arrived in pieces.
/// Real clients send it in one segment; this only bounds a dribbler, whose
/// whole wait the caller's header read timeout bounds anyway.
const PIECES: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    Http2,
}

/// Waits for the connection's first bytes and tells the protocol; the
/// bytes stay in the socket for hyper to read. A connection closed before
/// sending anything is handed to HTTP/1, which ends it quietly. The caller
/// bounds the wait (a client that sends nothing is a slow client).
pub(super) async fn sniff(tcp: &TcpStream) -> io::Result<Protocol> {
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let n = tcp.peek(&mut buf).await?;
        match classify(&buf[..n]) {
            Some(protocol) => return Ok(protocol),
            // A true prefix of the preface: a peek returns at once while
            // bytes wait, so pause instead of spinning until the rest comes.
            None => tokio::time::sleep(PIECES).await,
        }
    }
}

/// `None` while `first` is a true, non-empty prefix of the preface.
fn classify(first: &[u8]) -> Option<Protocol> {
    if first.is_empty() || !PREFACE.starts_with(first) {
        Some(Protocol::Http1)
    } else if first.len() == PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_preface_is_http2_and_a_request_line_is_http1() {
        assert_eq!(classify(PREFACE), Some(Protocol::Http2));
        assert_eq!(
            classify(b"GET /api/v1/articles HTTP/1.1\r\n"),
            Some(Protocol::Http1)
        );
        // hyper answers a request line it cannot parse, not the sniffer.
        assert_eq!(classify(b"PRX"), Some(Protocol::Http1));
    }

    #[test]
    fn a_part_of_the_preface_waits_for_more_and_nothing_at_all_is_http1() {
        assert_eq!(classify(b"PRI * HTTP/2"), None);
        assert_eq!(classify(b""), Some(Protocol::Http1));
    }
}
