use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub platform: kit::PlatformSettings,
    pub database: kit::db::DatabaseSettings,
    pub cache: kit::cache::CacheSettings,
}

/// Where the config files live unless `APP_CONFIG_DIR` says otherwise.
pub const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config");

/// `--check-config` (kit::cli): what a deployment of this service must provide.
impl kit::cli::Checked for Settings {
    fn contract(&self) -> kit::cli::Contract {
        let mut contract = self.platform.contract(crate::SERVICE);
        contract.dial_database(&self.database);
        contract.dial_cache(&self.cache);
        contract
    }
}
