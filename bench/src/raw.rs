//! The open-loop HTTP generator's engine: `GET` over at most N kept-alive
//! HTTP/1.1 connections written by hand, for a generator that costs little
//! per request.
//!
//! Hand-written instead of reqwest because the generator shares the
//! machine with what it measures: at 10× the article list's maximum
//! (19 000 requests a second on a 2-vCPU AMD VM) reqwest's client, with a
//! task per request and a pool behind a lock, took the whole core it was
//! pinned to (53 µs per request), so the requests it was due to send
//! waited for its own CPU and the overload stage's p99 measured the
//! generator (seconds), not the server. Here a request is one `write` of
//! bytes built once and one or two `read`s, parsed by `httparse`; one
//! dispatcher task owns the schedule, the idle connections and the
//! histogram, so nothing is locked.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::load::{GRACE, Report};

/// Where and what to ask: one server, one or more paths on it.
#[derive(Debug, Clone)]
struct Target {
    addr: String,
    /// Built once; shared by every connection.
    requests: Arc<[Vec<u8>]>,
}

impl Target {
    fn get(urls: &[impl AsRef<str>]) -> anyhow::Result<Self> {
        let mut addr = None;
        let mut requests = Vec::with_capacity(urls.len());
        for url in urls {
            let url = reqwest::Url::parse(url.as_ref())?;
            if url.scheme() != "http" {
                bail!("{url}: the generator speaks plain http only");
            }
            let host = url.host_str().context("a URL without a host")?;
            let port = url.port_or_known_default().unwrap_or(80);
            let here = format!("{host}:{port}");
            match &addr {
                None => addr = Some(here.clone()),
                Some(first) if *first != here => {
                    bail!("{url}: every URL must name the same server as the first, {first}")
                }
                Some(_) => {}
            }
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            requests.push(format!("GET {path} HTTP/1.1\r\nhost: {here}\r\n\r\n").into_bytes());
        }
        Ok(Self {
            addr: addr.context("no URL to ask")?,
            requests: requests.into(),
        })
    }
}

/// One kept-alive connection, opened on first use and again after an error.
struct Connection {
    target: Target,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Connection {
    fn new(target: Target) -> Self {
        Self {
            target,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// The target's `request`th request; `Ok(answer)` once the whole
    /// answer is read.
    async fn ask(&mut self, request: usize) -> anyhow::Result<Answer> {
        let result = self.exchange(request).await;
        if !matches!(result, Ok((_, true))) {
            // An error or `connection: close`: the next request reconnects.
            self.stream = None;
        }
        result.map(|(answer, _)| answer)
    }

    async fn exchange(&mut self, request: usize) -> anyhow::Result<(Answer, bool)> {
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let stream = TcpStream::connect(&self.target.addr).await?;
                stream.set_nodelay(true)?;
                self.stream.insert(stream)
            }
        };
        stream.write_all(&self.target.requests[request]).await?;
        self.buf.clear();
        loop {
            if self.buf.len() == self.buf.capacity() {
                self.buf.reserve(self.buf.capacity());
            }
            if stream.read_buf(&mut self.buf).await? == 0 {
                bail!("the server closed the connection");
            }
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = response.parse(&self.buf)? else {
                continue;
            };
            let status = response.code.unwrap_or(0);
            let mut length = None;
            let mut keep_alive = true;
            for header in response.headers.iter() {
                if header.name.eq_ignore_ascii_case("content-length") {
                    length = std::str::from_utf8(header.value)?
                        .trim()
                        .parse::<usize>()
                        .ok();
                } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("a chunked answer: the generator reads Content-Length bodies only");
                } else if header.name.eq_ignore_ascii_case("connection") {
                    keep_alive = !header.value.eq_ignore_ascii_case(b"close");
                }
            }
            // 1xx, 204 and 304 answers have no body whatever they say.
            let bodiless = status < 200 || status == 204 || status == 304;
            let length = if bodiless { Some(0) } else { length };
            let total = head + length.context("an answer without Content-Length")?;
            while self.buf.len() < total {
                self.buf.reserve(total - self.buf.len());
                if stream.read_buf(&mut self.buf).await? == 0 {
                    bail!("the server closed the connection mid-body");
                }
            }
            let degraded = (200..300).contains(&status)
                && memchr::memmem::find(&self.buf[head..total], DEGRADED).is_some();
            return Ok((Answer { status, degraded }, keep_alive));
        }
    }
}

/// The gateway's mark on an answer that left out a low-priority part
/// (authors, comment counts) or came from a stale copy. Inside a JSON
/// string the quotes would be escaped, so article text cannot match it.
const DEGRADED: &[u8] = br#""degraded":["#;

/// What the generator keeps of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer {
    status: u16,
    /// A 2xx marked `"degraded":[…]`.
    degraded: bool,
}

/// What a connection task tells the dispatcher when a request is over.
struct Done {
    connection: usize,
    /// Microseconds from when the request was due, or `None` for a failure
    /// (no answer, or not a 2xx).
    latency: Option<u64>,
    degraded: bool,
}

async fn serve(
    id: usize,
    mut connection: Connection,
    mut due: mpsc::UnboundedReceiver<(Instant, usize)>,
    done: mpsc::UnboundedSender<Done>,
) {
    while let Some((at, request)) = due.recv().await {
        let answer = connection.ask(request).await.ok();
        let ok = answer.is_some_and(|a| (200..300).contains(&a.status));
        let latency = ok.then(|| at.elapsed().as_micros().max(1) as u64);
        if done
            .send(Done {
                connection: id,
                latency,
                degraded: answer.is_some_and(|a| a.degraded),
            })
            .is_err()
        {
            return;
        }
    }
}

/// The connections and the requests waiting for one.
struct Pool {
    target: Target,
    max: usize,
    /// Idle connections, the most recently used last: reused first, as a
    /// client pool does, so a light load keeps few connections warm.
    idle: Vec<usize>,
    senders: Vec<mpsc::UnboundedSender<(Instant, usize)>>,
    /// Due while every connection was busy: sent in order as they free up,
    /// their latency still counted from when they were due.
    backlog: VecDeque<(Instant, usize)>,
    done: mpsc::UnboundedSender<Done>,
}

impl Pool {
    fn send(&mut self, due: (Instant, usize)) {
        let id = match self.idle.pop() {
            Some(id) => id,
            None if self.senders.len() < self.max => {
                let (tx, rx) = mpsc::unbounded_channel();
                let id = self.senders.len();
                self.senders.push(tx);
                let connection = Connection::new(self.target.clone());
                tokio::spawn(serve(id, connection, rx, self.done.clone()));
                id
            }
            None => return self.backlog.push_back(due),
        };
        // The task lives as long as its sender: this cannot fail.
        let _ = self.senders[id].send(due);
    }

    fn freed(&mut self, id: usize) {
        match self.backlog.pop_front() {
            Some(due) => {
                let _ = self.senders[id].send(due);
            }
            None => self.idle.push(id),
        }
    }
}

/// `GET` each of `urls` in turn at `rate` for `duration` over at most
/// `connections` kept-alive connections (see [`crate::load::http`]).
pub async fn open_loop_get(
    urls: &[String],
    rate: f64,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<Report> {
    let target = Target::get(urls)?;
    // One request per URL first, so a wrong one fails loudly instead of as
    // a share of errors.
    let mut probe = Connection::new(target.clone());
    for (request, url) in urls.iter().enumerate() {
        let status = probe
            .ask(request)
            .await
            .with_context(|| format!("GET {url}"))?
            .status;
        if !(200..300).contains(&status) {
            return Err(anyhow!("GET {url}: {status}"));
        }
    }
    drop(probe);
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let mut pool = Pool {
        target,
        max: connections.max(1),
        idle: Vec::new(),
        senders: Vec::new(),
        backlog: VecDeque::new(),
        done: done_tx,
    };
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut started, mut finished, mut errors, mut degraded) = (0u64, 0u64, 0u64, 0u64);
    let mut record = |d: Done, pool: &mut Pool| {
        degraded += u64::from(d.degraded);
        match d.latency {
            Some(micros) => latency.saturating_record(micros),
            None => errors += 1,
        }
        pool.freed(d.connection);
    };

    // Tokio's timer has millisecond resolution: every tick starts whatever
    // the schedule says is due, so the rate holds whatever the interval.
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let start = Instant::now();
    loop {
        tokio::select! {
            biased;
            Some(d) = done.recv() => {
                finished += 1;
                record(d, &mut pool);
            }
            _ = ticker.tick() => {
                let elapsed = start.elapsed();
                if elapsed >= duration {
                    break;
                }
                let due = (elapsed.as_secs_f64() * rate) as u64;
                // Latency counts from the tick that starts a request, as
                // the task-per-request generator before this one did, so
                // figures stay comparable (the tick's 1 ms is not added).
                let now = Instant::now();
                while started < due {
                    pool.send((now, (started % pool.target.requests.len() as u64) as usize));
                    started += 1;
                }
            }
        }
    }
    let elapsed = start.elapsed();
    let deadline = tokio::time::Instant::now() + GRACE;
    while finished < started {
        match tokio::time::timeout_at(deadline, done.recv()).await {
            Ok(Some(d)) => {
                finished += 1;
                record(d, &mut pool);
            }
            _ => break,
        }
    }
    Ok(Report {
        requests: started,
        // Never answered within the grace, or never sent: errors.
        errors: errors + (started - finished),
        degraded,
        elapsed,
        latency,
    })
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers each request on its one connection with the
    /// next of `answers`, each written in two pieces.
    async fn serve_answers(answers: Vec<&'static [u8]>) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/api/v1/articles?limit=20",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            for answer in answers {
                let _ = socket.read(&mut buf).await.unwrap();
                let (head, tail) = answer.split_at(answer.len() / 2);
                socket.write_all(head).await.unwrap();
                tokio::task::yield_now().await;
                socket.write_all(tail).await.unwrap();
            }
        });
        Target::get(&[url]).unwrap()
    }

    #[tokio::test]
    async fn answers_are_read_whole_on_one_kept_alive_connection_whatever_their_status() {
        let target = serve_answers(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nretry-after: 1\r\n\r\n{}",
            b"HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        ])
        .await;
        let mut connection = Connection::new(target);
        for expected in [200, 503, 304, 200] {
            assert_eq!(connection.ask(0).await.unwrap().status, expected);
        }
    }

    #[tokio::test]
    async fn a_2xx_marked_degraded_is_told_apart_from_a_whole_answer() {
        let target = serve_answers(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 35\r\n\r\n{\"items\":[],\"degraded\":[\"authors\"]}",
            b"HTTP/1.1 200 OK\r\ncontent-length: 26\r\n\r\n{\"title\":\"\\\"degraded\\\":[\"}",
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 14\r\n\r\n{\"degraded\":[]",
        ])
        .await;
        let mut connection = Connection::new(target);
        let answers = [
            connection.ask(0).await.unwrap(),
            connection.ask(0).await.unwrap(),
            connection.ask(0).await.unwrap(),
        ];
        let degraded: Vec<bool> = answers.iter().map(|a| a.degraded).collect();
        // A title that quotes the key is escaped; a 5xx is an error, not
        // a degraded answer.
        assert_eq!(degraded, [true, false, false]);
    }

    #[tokio::test]
    async fn a_chunked_answer_is_an_error_not_a_hang() {
        let target = serve_answers(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ])
        .await;
        let error = Connection::new(target).ask(0).await.unwrap_err();
        assert!(error.to_string().contains("chunked"), "{error}");
    }

    #[tokio::test]
    async fn the_urls_are_asked_in_turn() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (seen_tx, mut seen) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            // The probe's connection, then the one `connections: 1` allows,
            // one after the other: each request's first line, in order.
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let seen = seen_tx.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = socket.read(&mut buf).await {
                        let line = String::from_utf8_lossy(&buf[..n])
                            .lines()
                            .next()
                            .map(str::to_owned);
                        let _ = seen.send(line.unwrap_or_default());
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let urls = [format!("{base}/a"), format!("{base}/b")];
        let report = open_loop_get(&urls, 200.0, Duration::from_millis(100), 1)
            .await
            .unwrap();
        assert_eq!(report.errors, 0);
        let mut lines = Vec::new();
        while let Ok(line) = seen.try_recv() {
            lines.push(line);
        }
        // The probe asks each once, then the schedule takes them in turn.
        assert!(lines.len() >= 6, "{lines:?}");
        for (i, line) in lines.iter().enumerate() {
            let path = if i % 2 == 0 { "/a" } else { "/b" };
            assert_eq!(*line, format!("GET {path} HTTP/1.1"), "request {i}");
        }
    }

    #[test]
    fn the_requests_are_built_once_from_urls_on_one_server() {
        let target = Target::get(&[
            "http://127.0.0.1:8080/api/v1/articles?limit=20",
            "http://127.0.0.1:8080/api/v1/articles?limit=20&cursor=AAAAAAAAACg",
        ])
        .unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080");
        assert_eq!(
            target.requests[0],
            b"GET /api/v1/articles?limit=20 HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n"
        );
        assert_eq!(
            target.requests[1],
            b"GET /api/v1/articles?limit=20&cursor=AAAAAAAAACg HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n"
        );
        assert!(Target::get(&["https://example.com/"]).is_err());
        assert!(Target::get(&["http://127.0.0.1:8080/", "http://127.0.0.1:8081/"]).is_err());
        let none: [&str; 0] = [];
        assert!(Target::get(&none).is_err());
    }
}
