//! Discovery under real etcd failures: a private etcd per test that the test
//! stops, wipes or compacts, with servers and resolvers of this process.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kit::PlatformSettings;
use kit::discovery::{ChannelSettings, EndpointSet, Resolver};
use kit::metrics::Registry;
use kit::server::GrpcServer;
use kit::testing::{self, EtcdProcess, RunningServer};
use tokio::time::{Instant, timeout};

/// Fast settings: 2 s leases, quick retries.
fn platform(etcd: &EtcdProcess) -> PlatformSettings {
    testing::init_tracing();
    let mut platform = PlatformSettings::default();
    testing::prepare_platform(&mut platform, &format!("/{}", testing::unique_name("disc")));
    platform.discovery.endpoints = vec![etcd.endpoint()];
    platform.discovery.lease_ttl = Duration::from_secs(2);
    platform.discovery.request_timeout = Duration::from_millis(500);
    platform.discovery.backoff_max = Duration::from_millis(500);
    platform.discovery.key_check_interval = Duration::from_millis(300);
    platform.discovery.resync_interval = Duration::from_secs(2);
    platform
}

async fn spawn(name: &str, platform: &PlatformSettings) -> RunningServer {
    RunningServer::spawn(
        GrpcServer::bind(name, platform, &Registry::new())
            .await
            .unwrap(),
    )
}

fn resolver(platform: &PlatformSettings) -> Resolver {
    Resolver::spawn(
        &platform.discovery,
        &ChannelSettings::default(),
        &Registry::new(),
    )
}

async fn wait_for(endpoints: &EndpointSet, n: usize, within: Duration) -> Duration {
    let start = Instant::now();
    timeout(within, endpoints.wait_until(|i| i.len() == n))
        .await
        .unwrap_or_else(|_| panic!("never saw {n} instance(s); saw {:?}", endpoints.instances()));
    start.elapsed()
}

async fn keys(etcd: &EtcdProcess, platform: &PlatformSettings) -> usize {
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    let prefix = format!("{}/", platform.discovery.prefix);
    client
        .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .map(|r| r.kvs().len())
        .unwrap_or(0)
}

async fn wait_for_keys(
    etcd: &EtcdProcess,
    platform: &PlatformSettings,
    n: usize,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    while keys(etcd, platform).await != n {
        assert!(start.elapsed() < within, "keys never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn services_re_register_by_themselves_after_etcd_loses_all_its_data() {
    let mut etcd = EtcdProcess::start().await;
    let platform = platform(&etcd);
    let a = spawn("alpha", &platform).await;
    let b = spawn("beta", &platform).await;
    a.wait_until_serving().await;
    b.wait_until_serving().await;
    let resolver = resolver(&platform);
    let alpha = resolver.endpoints("alpha");
    wait_for(&alpha, 1, Duration::from_secs(5)).await;

    etcd.restart_empty().await;
    let back = wait_for_keys(&etcd, &platform, 2, Duration::from_secs(10)).await;
    println!("re-registered on an empty etcd within {back:?}");
    wait_for(&alpha, 1, Duration::from_secs(5)).await;
    assert_eq!(alpha.instances()[0].addr, a.grpc_addr.to_string());
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_compaction_past_the_watch_revision_keeps_endpoints_exact() {
    let etcd = EtcdProcess::start().await;
    let platform = platform(&etcd);
    let resolver = resolver(&platform);
    resolver.wait_synced().await;
    let gamma = resolver.endpoints("gamma");

    // Churn the revision far ahead, compact, and change membership in the
    // middle, so a resumed watch could only be right by re-listing.
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    let one = spawn("gamma", &platform).await;
    wait_for(&gamma, 1, Duration::from_secs(5)).await;
    for i in 0..200 {
        client.put(format!("/churn/{i}"), "x", None).await.unwrap();
    }
    let two = spawn("gamma", &platform).await;
    two.wait_until_serving().await;
    let revision = client
        .get("/churn/0", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client.compact(revision, None).await.unwrap();
    one.stop().await;
    wait_for(&gamma, 1, Duration::from_secs(5)).await;
    assert_eq!(gamma.instances()[0].addr, two.grpc_addr.to_string());
    two.stop().await;
    wait_for(&gamma, 0, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_key_deleted_by_hand_is_put_back_within_seconds() {
    let etcd = EtcdProcess::start().await;
    let platform = platform(&etcd);
    let server = spawn("delta", &platform).await;
    server.wait_until_serving().await;
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None)
        .await
        .unwrap();
    let prefix = format!("{}/delta/", platform.discovery.prefix);
    client
        .delete(
            prefix,
            Some(etcd_client::DeleteOptions::new().with_prefix()),
        )
        .await
        .unwrap();
    let back = wait_for_keys(&etcd, &platform, 1, Duration::from_secs(5)).await;
    println!("deleted key re-created within {back:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_service_started_before_etcd_becomes_ready_once_etcd_starts() {
    let mut etcd = EtcdProcess::start().await;
    let platform = platform(&etcd);
    etcd.kill();
    let server = spawn("epsilon", &platform).await;
    let admin = format!("http://{}/readyz", server.admin_addr);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        reqwest::get(&admin).await.unwrap().status(),
        503,
        "not ready without etcd"
    );

    etcd.restart().await;
    let start = Instant::now();
    server.wait_until_serving().await;
    println!("ready {:?} after etcd started", start.elapsed());
    assert_eq!(reqwest::get(&admin).await.unwrap().status(), 200);
    assert_eq!(keys(&etcd, &platform).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_resolver_drops_stopped_instances_and_finds_new_ones() {
    let etcd = EtcdProcess::start().await;
    let platform = platform(&etcd);
    let resolver = resolver(&platform);
    let zeta = resolver.endpoints("zeta");
    let old = spawn("zeta", &platform).await;
    wait_for(&zeta, 1, Duration::from_secs(5)).await;

    // No request flows: the set must still follow etcd.
    old.stop().await;
    wait_for(&zeta, 0, Duration::from_secs(5)).await;
    let new = spawn("zeta", &platform).await;
    wait_for(&zeta, 1, Duration::from_secs(5)).await;
    assert_eq!(zeta.instances()[0].addr, new.grpc_addr.to_string());

    // The first call after the idle period reaches the new instance.
    let channel = kit::client::Clients::new(&resolver, &Registry::new(), &Default::default())
        .unwrap()
        .channel("zeta");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .unwrap();
    new.stop().await;
}

#[tokio::test]
async fn etcd_down_for_a_while_keeps_endpoints_and_registration_comes_back() {
    let mut etcd = EtcdProcess::start().await;
    let platform = platform(&etcd);
    let server = spawn("eta", &platform).await;
    server.wait_until_serving().await;
    let resolver = resolver(&platform);
    let eta = resolver.endpoints("eta");
    wait_for(&eta, 1, Duration::from_secs(5)).await;

    etcd.kill();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        eta.len(),
        1,
        "last known endpoints are kept while etcd is away"
    );
    assert!(!resolver.is_connected());

    etcd.restart().await;
    let back = wait_for_keys(&etcd, &platform, 1, Duration::from_secs(10)).await;
    println!("registered again {back:?} after etcd returned");
    server.wait_until_serving().await;
    timeout(Duration::from_secs(10), async {
        while !resolver.is_connected() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(eta.len(), 1);
    server.stop().await;
}

/// A private three-member etcd cluster with a fast election timeout, whose
/// members the test can kill one by one.
struct Cluster {
    members: Vec<Option<std::process::Child>>,
    clients: Vec<String>,
    _data: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let names = ["m0", "m1", "m2"];
        let clients: Vec<String> = names
            .iter()
            .map(|_| format!("http://127.0.0.1:{}", testing::free_port()))
            .collect();
        let peers: Vec<String> = names
            .iter()
            .map(|_| format!("http://127.0.0.1:{}", testing::free_port()))
            .collect();
        let initial = names
            .iter()
            .zip(&peers)
            .map(|(name, peer)| format!("{name}={peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let members = (0..3)
            .map(|i| {
                let child = std::process::Command::new("etcd")
                    .args(["--name", names[i], "--data-dir"])
                    .arg(data.path().join(names[i]))
                    .args(["--listen-client-urls", &clients[i]])
                    .args(["--advertise-client-urls", &clients[i]])
                    .args(["--listen-peer-urls", &peers[i]])
                    .args(["--initial-advertise-peer-urls", &peers[i]])
                    .args(["--initial-cluster", &initial])
                    .args(["--initial-cluster-state", "new"])
                    .args(["--heartbeat-interval", "20", "--election-timeout", "200"])
                    .args(["--log-level", "error"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("etcd is not installed; run `make test`, which installs it");
                Some(child)
            })
            .collect();
        let cluster = Self {
            members,
            clients,
            _data: data,
        };
        for endpoint in &cluster.clients {
            let mut up = false;
            for _ in 0..200 {
                if let Ok(mut client) = etcd_client::Client::connect([endpoint], None).await
                    && client.get("health-probe", None).await.is_ok()
                {
                    up = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(up, "cluster member {endpoint} did not come up");
        }
        cluster
    }

    fn kill(&mut self, member: usize) {
        if let Some(mut child) = self.members[member].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for member in 0..self.members.len() {
            self.kill(member);
        }
    }
}

#[tokio::test]
async fn a_watch_on_a_member_that_lost_its_leader_ends_instead_of_staying_silent() {
    testing::init_tracing();
    let mut cluster = Cluster::start().await;
    let mut platform = PlatformSettings::default();
    testing::prepare_platform(&mut platform, &format!("/{}", testing::unique_name("disc")));
    // The resolver talks to member 0 only; no periodic re-list would notice.
    platform.discovery.endpoints = vec![cluster.clients[0].clone()];
    platform.discovery.request_timeout = Duration::from_millis(500);
    platform.discovery.backoff_max = Duration::from_millis(500);
    platform.discovery.resync_interval = Duration::from_secs(3600);
    let resolver = resolver(&platform);
    timeout(Duration::from_secs(10), resolver.wait_synced())
        .await
        .expect("the resolver synced through member 0");
    assert!(resolver.is_connected());

    // Member 0 loses its peers, as on the minority side of a partition: it
    // stays up and answers pings, but has no leader any more.
    cluster.kill(1);
    cluster.kill(2);
    let noticed = timeout(Duration::from_secs(20), async {
        while resolver.is_connected() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        noticed.is_ok(),
        "the watch on a leaderless member stayed open (it would until the periodic re-list)"
    );
}
