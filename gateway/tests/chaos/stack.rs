use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kit::testing::{self, EtcdProcess};
use tokio::time::Instant;

/// One running binary.
pub struct Process {
    pub name: &'static str,
    pub admin: u16,
    child: Child,
}

impl Process {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: no goodbye, the lease stays until its TTL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit; returns how long it took.
    pub async fn terminate(mut self) -> Duration {
        let start = Instant::now();
        signal(self.pid(), "TERM");
        tokio::task::spawn_blocking(move || self.child.wait().unwrap())
            .await
            .unwrap();
        start.elapsed()
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://127.0.0.1:{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: i32, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// etcd, the three services and the gateway as processes.
pub struct Stack {
    pub etcd: EtcdProcess,
    pub prefix: String,
    pub gateway_port: u16,
    pub gateway: Option<Process>,
    pub services: Vec<Process>,
    data: tempfile::TempDir,
}

/// Lease TTL of the chaos stack: short, so expiry-based paths run quickly.
pub const TTL: Duration = Duration::from_secs(3);

impl Stack {
    pub async fn start() -> Self {
        testing::init_tracing();
        let etcd = EtcdProcess::start().await;
        let mut stack = Self {
            etcd,
            prefix: format!("/{}", testing::unique_name("chaos")),
            gateway_port: testing::free_port(),
            gateway: None,
            services: Vec::new(),
            data: tempfile::tempdir().unwrap(),
        };
        for service in ["user", "content", "comment"] {
            stack.start_service(service).await;
        }
        stack.start_gateway().await;
        stack
    }

    fn crate_dir(name: &str) -> PathBuf {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        match name {
            "gateway" => root.join("gateway"),
            service => root.join("services").join(service),
        }
    }

    pub async fn start_service(&mut self, name: &'static str) {
        let admin = testing::free_port();
        let child = Command::new(testing::binary(name))
            .env("APP_ENVIRONMENT", "local")
            .env("APP_CONFIG_DIR", Self::crate_dir(name).join("config"))
            .env("APP_PLATFORM__GRPC__PORT", "0")
            .env("APP_PLATFORM__ADMIN__PORT", admin.to_string())
            .env(
                "APP_PLATFORM__DISCOVERY__ENDPOINTS",
                format!("[\"{}\"]", self.etcd.endpoint()),
            )
            .env("APP_PLATFORM__DISCOVERY__PREFIX", &self.prefix)
            .env(
                "APP_PLATFORM__DISCOVERY__LEASE_TTL",
                format!("{}s", TTL.as_secs()),
            )
            .env("APP_PLATFORM__DISCOVERY__REQUEST_TIMEOUT", "1s")
            .env("APP_PLATFORM__DISCOVERY__BACKOFF_MAX", "1s")
            .env("APP_PLATFORM__SHUTDOWN__PROPAGATION_DELAY", "500ms")
            .env("APP_PLATFORM__SHUTDOWN__DRAIN_TIMEOUT", "3s")
            .env(
                format!("APP_{}__DATABASE__URL", name.to_uppercase()),
                format!("sqlite://{}/{name}.db", self.data.path().display()),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let process = Process { name, admin, child };
        wait_ready(admin).await;
        self.services.push(process);
    }

    async fn start_gateway(&mut self) {
        let admin = testing::free_port();
        let child = Command::new(testing::binary("gateway"))
            .env("APP_ENVIRONMENT", "local")
            .env("APP_CONFIG_DIR", Self::crate_dir("gateway").join("config"))
            .env("APP_GATEWAY__HTTP__PORT", self.gateway_port.to_string())
            .env("APP_PLATFORM__ADMIN__PORT", admin.to_string())
            .env(
                "APP_PLATFORM__DISCOVERY__ENDPOINTS",
                format!("[\"{}\"]", self.etcd.endpoint()),
            )
            .env("APP_PLATFORM__DISCOVERY__PREFIX", &self.prefix)
            .env("APP_PLATFORM__DISCOVERY__REQUEST_TIMEOUT", "1s")
            .env("APP_PLATFORM__DISCOVERY__BACKOFF_MAX", "1s")
            .env("APP_PLATFORM__SHUTDOWN__PROPAGATION_DELAY", "0s")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.gateway = Some(Process {
            name: "gateway",
            admin,
            child,
        });
        wait_ready(admin).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.gateway_port)
    }

    /// Takes out the first running instance of `name`.
    pub fn take(&mut self, name: &str) -> Process {
        let at = self.services.iter().position(|p| p.name == name).unwrap();
        self.services.remove(at)
    }

    pub fn instances(&self, name: &str) -> Vec<&Process> {
        self.services.iter().filter(|p| p.name == name).collect()
    }

    /// Keys under the prefix for `service` in etcd right now.
    pub async fn registered(&self, service: &str) -> usize {
        let Ok(mut client) = etcd_client::Client::connect([self.etcd.endpoint()], None).await
        else {
            return 0;
        };
        client
            .get(
                format!("{}/{service}/", self.prefix),
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .map(|r| r.kvs().len())
            .unwrap_or(0)
    }

    /// Waits until the gateway sees `n` instances of `service`.
    pub async fn wait_for_instances(&self, service: &str, n: u64) {
        for _ in 0..400 {
            if let Ok(response) = reqwest::get(self.url("/readyz")).await
                && let Ok(body) = response.json::<serde_json::Value>().await
                && body["instances"][service].as_u64() == Some(n)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the gateway never saw {n} instance(s) of {service}");
    }
}

/// Waits until a process's admin port answers `/readyz` with 200.
async fn wait_ready(admin: u16) {
    for _ in 0..600 {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{admin}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process with admin port {admin} never became ready");
}
