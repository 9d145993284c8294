//! `hello LISTEN`: an axum hello-world on every path, the HTTP ceiling.
//! Workers: APP_PLATFORM__RUNTIME__WORKER_THREADS, like the gateway.

fn main() -> anyhow::Result<()> {
    let args = bench::args::Args::from_env()?;
    let listen = args.positional(0, "listen address")?.to_owned();
    bench::runtime(bench::WORKERS)?.block_on(bench::serve(&listen, bench::hello::router()))
}
