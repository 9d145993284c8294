//! `--check-config` (kit::cli): what a deployment of the gateway must provide.
//! Not `PlatformSettings::contract`: the gateway serves HTTP, not gRPC, and
//! registers nowhere.

use kit::cli::{Checked, Contract, Listener};

use crate::settings::Settings;

impl Checked for Settings {
    fn validate(&self) -> anyhow::Result<()> {
        Ok(Settings::validate(self)?)
    }

    fn contract(&self) -> Contract {
        let mut contract = Contract {
            listens: vec![
                Listener {
                    name: "http".into(),
                    port: self.http.port,
                },
                Listener {
                    name: "admin".into(),
                    port: self.platform.admin.port,
                },
            ],
            critical: self.platform.readiness.critical.clone(),
            shutdown_budget_ms: kit::cli::shutdown_budget(
                &self.platform.shutdown,
                self.platform.telemetry.flush_timeout,
            ),
            ..Contract::default()
        };
        contract.dial_etcd(&self.platform.discovery);
        contract.dial_telemetry(&self.platform.telemetry);
        for service in self.services.all() {
            contract.dial_service(service);
        }
        // Shared rate limits: the Redis their state lives in.
        if self.limits.enabled
            && self.limits.store == crate::limits::Store::Redis
            && let Some(url) = &self.limits.redis.url
        {
            use secrecy::ExposeSecret;
            contract
                .dials
                .extend(kit::cli::Dial::url("cache", url.expose_secret()));
        }
        contract
    }
}
