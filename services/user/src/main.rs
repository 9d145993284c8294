use user::settings::{CONFIG_DIR, Settings};

// mimalloc returns freed memory to the system; glibc keeps per-thread
// arenas (argon2's 19 MiB per hash stayed resident on every blocking thread).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let Some(settings) = kit::cli::settings::<Settings>(user::SERVICE, CONFIG_DIR)? else {
        return Ok(());
    };
    let _telemetry = kit::telemetry::init(user::SERVICE, &settings.platform.telemetry)?;
    kit::runtime::build(&settings.platform.runtime)?.block_on(async {
        let server = user::startup::build(settings).await?;
        Ok(server.run_until(kit::shutdown::signal()).await?)
    })
}
