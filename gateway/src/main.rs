use gateway::settings::{CONFIG_DIR, Settings};
use gateway::startup::Gateway;

fn main() -> anyhow::Result<()> {
    let settings: Settings = kit::config::load(CONFIG_DIR)?;
    settings.validate()?;
    let _telemetry = kit::telemetry::init(gateway::SERVICE, &settings.telemetry)?;
    kit::runtime::build(&settings.runtime)?.block_on(async {
        Gateway::build(settings)
            .await?
            .run_until(kit::shutdown::signal())
            .await
    })
}
