//! The load generator of `make bench`:
//!
//! - `loadgen http URL --rate R --duration S`: open-loop `GET URL`;
//! - `loadgen grpc-page --content A --user A --comment A --rate R --duration S
//!   [--limit 20]`: the gateway's article page made directly over gRPC;
//! - `loadgen fixed URL --requests N [--body JSON --token T]`: N requests in
//!   sequence on one connection (`POST` when a body is given), for counting
//!   instructions and system calls per request (scripts/bench-instr.sh);
//! - `loadgen seed BASE_URL [--articles 100] [--comments 200]`: canned text
//!   through the public API, printing `KEY=value` lines.
//!
//! Workers: LOADGEN_WORKER_THREADS (0 = one per core).

use std::time::Duration;

use bench::args::Args;

fn main() -> anyhow::Result<()> {
    let args = Args::from_env()?;
    let duration = || args.or("duration", 10.0).map(Duration::from_secs_f64);
    bench::runtime("LOADGEN_WORKER_THREADS")?.block_on(async {
        match args.positional(0, "mode: http, fixed, grpc-page or seed")? {
            "http" => {
                let url = args.positional(1, "URL")?;
                let report = bench::load::http(url, args.required("rate")?, duration()?).await?;
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
            other => anyhow::bail!("unknown mode {other:?}: http, fixed, grpc-page or seed"),
        }
        Ok(())
    })
}
