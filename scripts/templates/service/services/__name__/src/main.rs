use __name__::settings::{CONFIG_DIR, Settings};

// mimalloc returns freed memory to the system; glibc keeps per-thread arenas
// that hold on to the peaks of request, query and response buffers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let Some(settings) = kit::cli::settings::<Settings>(__name__::SERVICE, CONFIG_DIR)? else {
        return Ok(());
    };
    let _telemetry = kit::telemetry::init(__name__::SERVICE, &settings.platform.telemetry)?;
    kit::runtime::build(&settings.platform.runtime)?.block_on(async {
        let server = __name__::startup::build(settings).await?;
        Ok(server.run_until(kit::shutdown::signal()).await?)
    })
}
