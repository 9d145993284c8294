//! Latency without `sch_netem`: a TCP relay inside a host's network
//! namespace that holds every byte the service behind it sends for a fixed
//! delay, as `tc netem delay` on the host's link holds every packet it sends.
//!
//! Hand-written: toxiproxy, the usual tool, is not packaged for Debian, and
//! a relay is a few lines of tokio. It is a real delay on real sockets: the
//! gateway's calls reach it through an nftables redirect ([`crate::netns`]).

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Runs until dropped, on a thread of its own that lives in the host's
/// namespace: sockets belong to the namespace of the thread that opens them.
pub struct Relay {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    /// A relay listening in `netns` on a free port (returned) that forwards
    /// each connection to `upstream`, delaying what comes back by `delay`.
    pub fn start(
        netns: &str,
        upstream: SocketAddr,
        delay: Duration,
    ) -> Result<(Self, u16), String> {
        let namespace = std::fs::File::open(format!("/var/run/netns/{netns}"))
            .map_err(|e| format!("namespace {netns}: {e}"))?;
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let started = (|| {
                rustix::thread::move_into_link_name_space(
                    namespace.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .map_err(|e| format!("setns: {e}"))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                let listener = runtime
                    .block_on(TcpListener::bind("0.0.0.0:0"))
                    .map_err(|e| e.to_string())?;
                let port = listener.local_addr().map_err(|e| e.to_string())?.port();
                Ok::<_, String>((runtime, listener, port))
            })();
            let (runtime, listener, port) = match started {
                Ok(started) => started,
                Err(e) => {
                    let _ = port_tx.send(Err(e));
                    return;
                }
            };
            let _ = port_tx.send(Ok(port));
            // Dropping the runtime ends every relayed connection.
            runtime.block_on(async move {
                tokio::select! {
                    _ = stopped => {}
                    _ = accept(listener, upstream, delay) => {}
                }
            });
        });
        let port = port_rx
            .recv()
            .map_err(|_| "the relay thread ended".to_owned())??;
        Ok((
            Self {
                stop: Some(stop),
                thread: Some(thread),
            },
            port,
        ))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, delay: Duration) {
    while let Ok((client, _)) = listener.accept().await {
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = (client.set_nodelay(true), server.set_nodelay(true));
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::join!(
                delayed(client_read, server_write, Duration::ZERO),
                delayed(server_read, client_write, delay),
            );
        });
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read; reading
/// goes on meanwhile, so the delay is latency, not a limit on throughput.
async fn delayed(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0; 16 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let write = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}
