//! `skeleton-gateway LISTEN --content ADDR --user ADDR --comment ADDR`: the
//! gateway's article list over plain tonic. Workers:
//! APP_PLATFORM__RUNTIME__WORKER_THREADS, like the real gateway.

fn main() -> anyhow::Result<()> {
    let args = bench::args::Args::from_env()?;
    let listen = args.positional(0, "listen address")?.to_owned();
    bench::runtime(bench::WORKERS)?.block_on(async {
        // Lazy channels need the runtime's reactor.
        let clients = bench::skeleton::Clients::new(
            &args.required::<String>("content")?,
            &args.required::<String>("user")?,
            &args.required::<String>("comment")?,
        )?;
        bench::serve(&listen, bench::skeleton::gateway(clients)).await
    })
}
