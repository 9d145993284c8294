//! `skeleton-service ADDR`: canned user, content and comment services over
//! plain tonic. Workers: APP_PLATFORM__RUNTIME__WORKER_THREADS, like the
//! real services.

fn main() -> anyhow::Result<()> {
    let args = bench::args::Args::from_env()?;
    let addr: std::net::SocketAddr = args.positional(0, "listen address")?.parse()?;
    bench::runtime(bench::WORKERS)?.block_on(async {
        bench::skeleton::services()
            .serve_with_shutdown(addr, shutdown())
            .await?;
        Ok(())
    })
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
