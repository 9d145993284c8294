//! The live API dashboard on the admin port (the Hystrix dashboard, reborn):
//! `/admin/dashboard` is a self-contained page (no CDN: it works offline and
//! behind any proxy) fed by `/admin/dashboard/stream`, a server-sent event
//! per second with QPS over five minutes, p98 and top APIs, status codes,
//! breakers and the live instances of every service.
//!
//! It reads the gateway's own registry, as Prometheus would, so what it
//! shows and what alerts fire on are the same numbers.

mod exposition;
mod stats;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use futures::Stream;
use kit::discovery::Resolver;
use kit::metrics::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use stats::{Frame, ServiceInstances, Window};

const PAGE: &str = include_str!("page.html");
/// How often the registry is sampled and a snapshot is pushed.
const TICK: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct DashboardState {
    snapshots: watch::Receiver<Arc<str>>,
    stop: CancellationToken,
}

/// Starts sampling `registry` and returns the dashboard routes. Sampling and
/// open streams end when `stop` is cancelled (before the admin server
/// drains, which would otherwise wait for streams that never end).
pub fn router(registry: Registry, resolver: Resolver, stop: CancellationToken) -> Router {
    let (tx, snapshots) = watch::channel::<Arc<str>>(Arc::from("{}"));
    kit::telemetry::spawn(
        "dashboard-sampler",
        sample(registry, resolver, tx, stop.clone()),
    );
    Router::new()
        .route("/admin/dashboard", get(|| async { Html(PAGE) }))
        .route("/admin/dashboard/snapshot", get(snapshot))
        .route("/admin/dashboard/stream", get(stream))
        .with_state(DashboardState { snapshots, stop })
}

async fn sample(
    registry: Registry,
    resolver: Resolver,
    tx: watch::Sender<Arc<str>>,
    stop: CancellationToken,
) {
    let mut window = Window::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        window.push(Frame::from_exposition(&registry.encode(), now_ms));
        let services = resolver
            .services()
            .iter()
            .map(|set| ServiceInstances {
                service: set.service().to_owned(),
                instances: set.instances().into_iter().map(|i| i.addr).collect(),
            })
            .collect();
        match serde_json::to_string(&window.snapshot(services)) {
            Ok(json) => {
                tx.send_replace(Arc::from(json));
            }
            Err(e) => tracing::warn!(error = %e, "dashboard snapshot not encoded"),
        }
    }
}

async fn snapshot(State(state): State<DashboardState>) -> impl IntoResponse {
    let json = state.snapshots.borrow().clone();
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
}

async fn stream(
    State(state): State<DashboardState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let DashboardState { snapshots, stop } = state;
    let events = futures::stream::unfold(
        (snapshots, stop, true),
        |(mut rx, stop, first)| async move {
            if !first {
                tokio::select! {
                    changed = rx.changed() => changed.ok()?,
                    () = stop.cancelled() => return None,
                }
            }
            let data = rx.borrow_and_update().clone();
            Some((Ok(Event::default().data(&*data)), (rx, stop, false)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}
