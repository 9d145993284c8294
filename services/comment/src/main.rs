use comment::settings::{CONFIG_DIR, Settings};

fn main() -> anyhow::Result<()> {
    let settings: Settings = kit::config::load(CONFIG_DIR)?;
    let _telemetry = kit::telemetry::init(comment::SERVICE, &settings.platform.telemetry)?;
    kit::runtime::build(&settings.platform.runtime)?.block_on(async {
        let server = comment::startup::build(settings).await?;
        Ok(server.run_until(kit::shutdown::signal()).await?)
    })
}
