//! `--check-config` (kit::cli): what a deployment of the gateway must provide.

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
                    port: self.admin.port,
                },
            ],
            critical: self.readiness.critical.clone(),
            shutdown_budget_ms: kit::cli::shutdown_budget(
                &self.shutdown,
                self.telemetry.flush_timeout,
            ),
            ..Contract::default()
        };
        contract.dial_etcd(&self.discovery);
        contract.dial_telemetry(&self.telemetry);
        for service in self.services.all() {
            contract.dial_service(service);
        }
        contract
    }
}
