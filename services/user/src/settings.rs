use serde::Deserialize;

use crate::password::PasswordSettings;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub platform: kit::PlatformSettings,
    pub database: kit::db::DatabaseSettings,
    pub cache: kit::cache::CacheSettings,
    pub password: PasswordSettings,
}

/// Where the config files live unless `APP_CONFIG_DIR` says otherwise.
pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

// `--check-config` (kit::cli): what start-up would refuse, and what a
// deployment of this service must provide.
kit::grpc_service_checked!(Settings, crate::SERVICE, CALLS, [database, cache]);

/// The discovery names this service calls (see startup.rs).
const CALLS: &[&str] = &[];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checked_in_configs_load() {
        kit::testing::assert_checked_in_configs_load::<Settings>(CONFIG_DIR);
    }
}
