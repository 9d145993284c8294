//! Benchmark tools for `make bench` (scripts/bench.sh).
//!
//! - [`skeleton`]: the architecture's own limit — an axum handler making the
//!   gateway's three tonic calls to canned-data tonic servers, with no
//!   discovery, metrics, middleware or storage. The platform's article-list
//!   throughput is reported as a ratio to it.
//! - [`hello`]: an axum hello-world, the HTTP ceiling of the machine.
//! - [`load`]: an open-loop load generator (fixed rate, latency percentiles)
//!   for HTTP and for the gateway's gRPC calls made directly, plus the seeding
//!   of a real stack with the skeleton's canned text.
//! - [`raw`]: the HTTP generator's engine, kept-alive connections written by
//!   hand so that the generator costs little beside what it measures.
//! - [`spike`]: `make spike`'s load, per-second record, report and plot.
//!
//! Every server takes the platform's worker-count knob from the same
//! variables as the real processes, so a comparison is always like for like.

pub mod args;
pub mod canned;
pub mod hello;
pub mod load;
pub mod raw;
pub mod skeleton;
pub mod spike;

/// A tokio runtime sized like `kit::runtime`: `var` holds the worker count,
/// 0 or unset meaning one per core. Hand-written (eight lines) so the
/// skeleton stays free of the platform's crates.
pub fn runtime(var: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    let workers: usize = match std::env::var(var) {
        Ok(value) if !value.is_empty() => value
            .parse()
            .map_err(|e| anyhow::anyhow!("{var}={value:?}: {e}"))?,
        _ => 0,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        builder.worker_threads(workers);
    }
    Ok(builder.enable_all().build()?)
}

/// The real binaries' shared knob (`platform.runtime.worker_threads`), read
/// by every skeleton as the gateway and the services read it.
pub const WORKERS: &str = "APP_PLATFORM__RUNTIME__WORKER_THREADS";

/// Serves `router` on `listen` with Nagle off on every connection, as the
/// gateway does, so the comparison is like for like.
pub async fn serve(listen: &str, router: axum::Router) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind(listen).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // Ctrl-C (SIGINT) ends it cleanly, so a profiling build (scripts/pgo.sh)
    // writes its profile.
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
