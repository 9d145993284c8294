//! A gRPC connection whose writes reach the socket once per flush.
//!
//! h2 encodes small frames into its own buffer but keeps a DATA frame of
//! 256 bytes or more aside, to write it with `writev` from the caller's
//! buffer, and it cannot queue another frame behind one kept aside: it
//! writes it out first. A unary answer is HEADERS, one DATA frame and
//! the trailers, so every answer of 256 bytes or more cost two writes:
//! HEADERS + DATA, then the trailers (`strace`: the user service's 260-byte
//! page of authors went out as 269 + 10 bytes, 1.8 writes per call, where the
//! bare skeleton's 200-byte answer took one). On a VM where a system call
//! costs microseconds, and a segment on the caller's side one more wake-up,
//! that is a sixth of the service's CPU per call (docs/benchmarks.md).
//!
//! h2 keys the threshold on the transport: 1 KiB when it cannot write
//! vectored. So this connection says it cannot, and puts a [`BufWriter`]
//! under h2 so that a larger frame, now written piece by piece, still
//! reaches the socket in one write per flush rather than one per piece. An
//! answer under 1 KiB leaves in one write; a larger one in two, as before.
//! h2 flushes at the end of every batch of frames, so nothing waits in the
//! buffer for more.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, BufWriter, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Two maximum-size (16 KiB) DATA frames with their heads and trailers: what
/// h2 writes between two flushes of one busy connection. Allocated per
/// connection; the gRPC port's callers are the gateways and the services.
const CAPACITY: usize = 32 * 1024;

pub(super) struct Coalesced(BufWriter<TcpStream>);

impl Coalesced {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self(BufWriter::with_capacity(CAPACITY, stream))
    }
}

impl Connected for Coalesced {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().connect_info()
    }
}

impl AsyncRead for Coalesced {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Coalesced {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    /// What h2 reads to pick its threshold: 1 KiB instead of 256 bytes.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (Coalesced, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        (Coalesced::new(accepted.unwrap().0), client.unwrap())
    }

    #[tokio::test]
    async fn h2_is_told_the_connection_cannot_write_vectored() {
        let (server, _client) = pair().await;
        assert!(!server.is_write_vectored());
    }

    #[tokio::test]
    async fn pieces_written_before_a_flush_reach_the_peer_together_at_the_flush() {
        let (mut server, mut client) = pair().await;
        server.write_all(&[1; 269]).await.unwrap();
        server.write_all(&[2; 10]).await.unwrap();
        let mut read = [0; 512];
        // On loopback a send is readable by the peer when it returns.
        let early = client.try_read(&mut read);
        assert_eq!(
            early.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::WouldBlock),
            "nothing may reach the peer before the flush"
        );

        server.flush().await.unwrap();
        let mut got = Vec::new();
        while got.len() < 279 {
            let n = client.read(&mut read).await.unwrap();
            got.extend_from_slice(&read[..n]);
        }
        assert_eq!(got.len(), 279);
        assert_eq!(&got[268..270], &[1, 2]);
    }

    #[tokio::test]
    async fn reads_pass_through() {
        let (mut server, mut client) = pair().await;
        client.write_all(b"ping").await.unwrap();
        let mut read = [0; 4];
        server.read_exact(&mut read).await.unwrap();
        assert_eq!(&read, b"ping");
    }
}
