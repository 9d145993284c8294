use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kit::testing::{self, EtcdProcess};
use tokio::time::Instant;

/// Where a process runs: the test's own network namespace on 127.0.0.1,
/// or a "host" of a [`crate::netns::Net`] with an address of its own.
#[derive(Clone, Debug)]
pub struct Host {
    pub netns: Option<String>,
    pub ip: String,
}

impl Host {
    pub fn local() -> Self {
        Self {
            netns: None,
            ip: "127.0.0.1".into(),
        }
    }

    /// `program` run on this host (`ip netns exec` execs it, so the child's
    /// pid is the program's own and signals reach it).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            None => Command::new(program),
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(program);
                command
            }
        }
    }
}

/// One running binary.
pub struct Process {
    pub name: &'static str,
    pub admin: u16,
    pub host: Host,
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
        reqwest::get(format!("http://{}:{}/metrics", self.host.ip, self.admin))
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
    /// The private single etcd, unless the stack runs on a cluster of the
    /// test's own ([`Stack::on`]).
    pub etcd: Option<EtcdProcess>,
    /// Every etcd client URL each process is given.
    pub endpoints: Vec<String>,
    pub prefix: String,
    pub gateway_host: Host,
    pub gateway_port: u16,
    /// Lease TTL of the services started from now on ([`TTL`] unless set).
    pub ttl: Duration,
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
        let mut stack = Self::on(vec![etcd.endpoint()], Host::local());
        stack.etcd = Some(etcd);
        for service in ["user", "content", "comment"] {
            stack.start_service(service).await;
        }
        stack.start_gateway().await;
        stack
    }

    /// An empty stack on the etcd at `endpoints`, its gateway (once started)
    /// on `gateway_host`.
    pub fn on(endpoints: Vec<String>, gateway_host: Host) -> Self {
        testing::init_tracing();
        Self {
            etcd: None,
            endpoints,
            prefix: format!("/{}", testing::unique_name("chaos")),
            gateway_host,
            gateway_port: testing::free_port(),
            ttl: TTL,
            gateway: None,
            services: Vec::new(),
            data: tempfile::tempdir().unwrap(),
        }
    }

    /// The private single etcd of [`Stack::start`].
    pub fn etcd(&mut self) -> &mut EtcdProcess {
        self.etcd.as_mut().unwrap()
    }

    fn endpoints_env(&self) -> String {
        serde_json::to_string(&self.endpoints).unwrap()
    }

    fn crate_dir(name: &str) -> PathBuf {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        match name {
            "gateway" => root.join("gateway"),
            service => root.join("services").join(service),
        }
    }

    pub async fn start_service(&mut self, name: &'static str) {
        self.start_service_on(name, Host::local()).await;
    }

    pub async fn start_service_on(&mut self, name: &'static str, host: Host) {
        let admin = testing::free_port();
        let child = host
            .command(testing::binary(name))
            .env("APP_ENVIRONMENT", "local")
            .env("APP_CONFIG_DIR", Self::crate_dir(name).join("config"))
            .env("APP_PLATFORM__GRPC__HOST", &host.ip)
            .env("APP_PLATFORM__GRPC__PORT", "0")
            .env("APP_PLATFORM__ADMIN__HOST", &host.ip)
            .env("APP_PLATFORM__ADMIN__PORT", admin.to_string())
            .env("APP_PLATFORM__DISCOVERY__ENDPOINTS", self.endpoints_env())
            .env("APP_PLATFORM__DISCOVERY__PREFIX", &self.prefix)
            .env(
                "APP_PLATFORM__DISCOVERY__LEASE_TTL",
                format!("{}s", self.ttl.as_secs()),
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
        let process = Process {
            name,
            admin,
            host,
            child,
        };
        wait_ready(&process.host.ip, admin).await;
        self.services.push(process);
    }

    pub async fn start_gateway(&mut self) {
        let admin = testing::free_port();
        let host = self.gateway_host.clone();
        let child = host
            .command(testing::binary("gateway"))
            .env("APP_ENVIRONMENT", "local")
            .env("APP_CONFIG_DIR", Self::crate_dir("gateway").join("config"))
            .env("APP_GATEWAY__HTTP__HOST", &host.ip)
            .env("APP_GATEWAY__HTTP__PORT", self.gateway_port.to_string())
            .env("APP_PLATFORM__ADMIN__HOST", &host.ip)
            .env("APP_PLATFORM__ADMIN__PORT", admin.to_string())
            .env("APP_PLATFORM__DISCOVERY__ENDPOINTS", self.endpoints_env())
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
            host: host.clone(),
            child,
        });
        wait_ready(&host.ip, admin).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}:{}{path}",
            self.gateway_host.ip, self.gateway_port
        )
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
        let Ok(mut client) = etcd_client::Client::connect(&self.endpoints, None).await else {
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

    /// The addresses the instances of `service` registered.
    pub async fn addresses(&self, service: &str) -> Vec<String> {
        let mut client = etcd_client::Client::connect(&self.endpoints, None)
            .await
            .unwrap();
        let listed = client
            .get(
                format!("{}/{service}/", self.prefix),
                Some(etcd_client::GetOptions::new().with_prefix()),
            )
            .await
            .unwrap();
        listed
            .kvs()
            .iter()
            .filter_map(|kv| serde_json::from_slice::<kit::discovery::Instance>(kv.value()).ok())
            .map(|instance| instance.addr)
            .collect()
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
async fn wait_ready(ip: &str, admin: u16) {
    for _ in 0..600 {
        if let Ok(r) = reqwest::get(format!("http://{ip}:{admin}/readyz")).await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("process with admin port {admin} never became ready");
}
