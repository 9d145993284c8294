//! The load generator of `make bench`:
//!
//! - `loadgen http URL [URL…] --rate R --duration S [--connections 1000]`:
//!   open-loop `GET` of the URLs in turn (one server) over at most that
//!   many kept-alive connections;
//! - `loadgen grpc-page --content A --user A --comment A --rate R --duration S
//!   [--limit 20]`: the gateway's article page made directly over gRPC;
//! - `loadgen fixed URL --requests N [--body JSON --token T]`: N requests in
//!   sequence on one connection (`POST` when a body is given), for counting
//!   instructions and system calls per request (scripts/bench-instr.sh);
//! - `loadgen seed BASE_URL [--articles 100] [--comments 200]`: canned text
//!   through the public API, printing `KEY=value` lines.
//! - `loadgen spike BASE_URL --out DIR --faults FILE [--rate 1000]
//!   [--factor 10] [--steady 30] [--spike 30] [--outage 40] [--recovery 40]
//!   [--p99-max-ms 500]`: `make spike`'s load (scripts/spike.sh), with the
//!   seed's `BENCH_*` variables in the environment; exits 1 when a
//!   threshold fails.
//!
//! Workers: LOADGEN_WORKER_THREADS (0 = one per core).

use std::time::Duration;

use bench::args::Args;

fn main() -> anyhow::Result<()> {
    let args = Args::from_env()?;
    let duration = || args.or("duration", 10.0).map(Duration::from_secs_f64);
    bench::runtime("LOADGEN_WORKER_THREADS")?.block_on(async {
        match args.positional(0, "mode: http, fixed, grpc-page, seed or spike")? {
            "http" => {
                args.positional(1, "URL")?;
                let urls = args.positionals_from(1);
                let connections = args.or("connections", bench::load::CONNECTIONS)?;
                let report =
                    bench::load::http(urls, args.required("rate")?, duration()?, connections)
                        .await?;
                println!("{report}");
            }
            "fixed" => {
                let url = args.positional(1, "URL")?;
                let body = args.or("body", String::new())?;
                let token = args.or("token", String::new())?;
                let report = bench::load::fixed(
                    url,
                    args.required("requests")?,
                    Some(body.as_str()).filter(|b| !b.is_empty()),
                    Some(token.as_str()).filter(|t| !t.is_empty()),
                )
                .await?;
                println!("{report}");
            }
            "grpc-page" => {
                let clients = bench::skeleton::Clients::new(
                    &args.required::<String>("content")?,
                    &args.required::<String>("user")?,
                    &args.required::<String>("comment")?,
                )?;
                let (limit, rate) = (args.or("limit", 20)?, args.required("rate")?);
                let report = bench::load::grpc_page(clients, limit, rate, duration()?).await?;
                println!("{report}");
            }
            "seed" => {
                let base = args.positional(1, "base URL")?;
                let (articles, comments) = (args.or("articles", 100)?, args.or("comments", 200)?);
                println!("{}", bench::load::seed(base, articles, comments).await?);
            }
            "spike" => {
                let base = args.positional(1, "base URL")?;
                let plan = bench::spike::Plan {
                    steady_rate: args.or("rate", 1000.0)?,
                    factor: args.or("factor", 10.0)?,
                    steady: args.or("steady", 30.0)?,
                    spike: args.or("spike", 30.0)?,
                    outage: args.or("outage", 40.0)?,
                    recovery: args.or("recovery", 40.0)?,
                    fresh_share: 0.5,
                    p99_max_ms: args.or("p99-max-ms", 500.0)?,
                };
                let out = std::path::PathBuf::from(args.required::<String>("out")?);
                let faults = std::path::PathBuf::from(args.required::<String>("faults")?);
                let seed = bench::spike::seed_from_env()?;
                if !bench::spike::run(base, seed, plan, &out, &faults).await? {
                    std::process::exit(1);
                }
            }
            other => anyhow::bail!("unknown mode {other:?}: http, fixed, grpc-page, seed or spike"),
        }
        Ok(())
    })
}
