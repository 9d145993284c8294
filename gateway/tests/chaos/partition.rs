//! Network faults between hosts: the three etcd members, two content
//! instances, a host with the user and comment services, and the gateway each
//! on a network namespace of their own ([`Net`]); links between two of them
//! are cut or impaired while the test's load runs through the gateway.

use std::time::Duration;

use kit::testing::metric;
use tokio::time::Instant;

use crate::cluster::{seen, watch_delivery};
use crate::etcd_cluster::EtcdCluster;
use crate::load::{Load, row, secs};
use crate::netns::Net;
use crate::scenarios::seed;
use crate::stack::{Host, Process, Stack};

const LIST: &str = "/api/v1/articles?limit=5";
const METHOD: &str = "/content.v1.ContentService/ListArticles";

/// Dropped in field order: processes first, the network last.
struct World {
    stack: Stack,
    cluster: EtcdCluster,
    gateway: Host,
    net: Net,
}

impl World {
    async fn start() -> Option<Self> {
        let mut net = Net::create()?;
        let members = vec![net.host("etcd0"), net.host("etcd1"), net.host("etcd2")];
        let cluster = EtcdCluster::start(members).await;
        let gateway = net.host("gateway");
        let mut stack = Stack::on(cluster.endpoints(), gateway.clone());
        let misc = net.host("misc");
        stack.start_service_on("user", misc.clone()).await;
        stack.start_service_on("comment", misc).await;
        stack
            .start_service_on("content", net.host("content-a"))
            .await;
        stack
            .start_service_on("content", net.host("content-b"))
            .await;
        stack.start_gateway().await;
        stack.wait_for_instances("content", 2).await;
        seed(&stack).await;
        Some(Self {
            stack,
            cluster,
            gateway,
            net,
        })
    }

    /// Content instance `i` (0 = a, 1 = b).
    fn content(&self, i: usize) -> &Process {
        self.stack.instances("content")[i]
    }

    async fn served(&self, i: usize) -> f64 {
        metric(
            &self.content(i).metrics().await,
            "grpc_server_requests_total",
            &[("method", METHOD)],
        )
    }

    /// The gRPC port content instance `i` registered in etcd.
    async fn grpc_port(&self, i: usize) -> u16 {
        let ip = &self.content(i).host.ip;
        self.stack
            .addresses("content")
            .await
            .iter()
            .find_map(|addr| addr.strip_prefix(&format!("{ip}:"))?.parse().ok())
            .unwrap()
    }

    async fn content_seen(&self) -> Option<u64> {
        seen(&self.stack).await.and_then(|i| i["content"].as_u64())
    }

    /// Waits (bounded) until the gateway sees `n` content instances; returns
    /// how long after `since`.
    async fn until_content_seen(&self, n: u64, since: Instant, limit: Duration) -> Duration {
        loop {
            if self.content_seen().await == Some(n) {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < limit,
                "the gateway did not see {n} content instance(s) within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn an_instance_cut_off_from_etcd_leaves_discovery_and_registers_again_on_heal() {
    let Some(world) = World::start().await else {
        return;
    };
    let a = world.content(0).host.clone();
    let load = Load::start(world.stack.url(LIST), 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for member in &world.cluster.members {
        world.net.cut(&a, &member.host);
    }
    let cut = Instant::now();
    let left = world
        .until_content_seen(1, cut, Duration::from_secs(30))
        .await;
    // Still alive and reachable, but no longer listed: no traffic for it.
    let before = world.served(0).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unlisted_traffic = world.served(0).await - before;
    world.net.heal(&a);
    let healed = Instant::now();
    let back = world
        .until_content_seen(2, healed, Duration::from_secs(30))
        .await;
    let report = load.stop(cut).await;
    println!(
        "CHAOS partition instance|etcd: {} requests, {} failed; left discovery {left:?} after the cut (lease TTL 3 s); {unlisted_traffic} requests reached it while unlisted; registered and seen again {back:?} after the heal",
        report.requests, report.failures
    );
    row(
        "partition: instance | etcd",
        report.requests,
        report.failures,
        &format!(
            "left discovery {} after the cut, back {} after the heal",
            secs(Some(left)),
            secs(Some(back))
        ),
    );
    assert!(report.requests > 100, "{report:?}");
    assert_eq!(report.failures, 0, "{report:?}");
    assert_eq!(unlisted_traffic, 0.0);
}

#[tokio::test]
#[ignore = "30 s: make chaos"]
async fn the_gateway_cut_off_from_one_listed_instance_ejects_it() {
    let Some(world) = World::start().await else {
        return;
    };
    let a = world.content(0).host.clone();
    let load = Load::start(world.stack.url(LIST), 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.net.cut(&world.gateway, &a);
    let cut = Instant::now();
    let window = Duration::from_secs(30);
    tokio::time::sleep(window).await;
    let listed = world.stack.registered("content").await;
    let seen_then = world.content_seen().await;
    let b_before = world.served(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b_after = world.served(1).await;
    world.net.heal(&world.gateway);
    let report = load.stop(cut).await;
    println!(
        "CHAOS partition gateway|instance: {} requests, {} failed; last failure {:?} after the cut (= time to ejection); etcd still lists {listed} content instances, the gateway {seen_then:?}; the other instance served {} in 2 s after; failures at {:?}",
        report.requests,
        report.failures,
        report.last_failure_after,
        b_after - b_before,
        report.failures_after
    );
    row(
        "partition: gateway | one instance",
        report.requests,
        report.failures,
        &format!(
            "ejected (last failure) {} after the cut",
            secs(report.last_failure_after)
        ),
    );
    assert_eq!(listed, 2, "etcd still lists the cut instance");
    assert!(
        report
            .last_failure_after
            .is_none_or(|d| d + Duration::from_secs(5) < window),
        "failures went on: {report:?}"
    );
    assert!(b_after > b_before, "the rest of the traffic went elsewhere");
}

#[tokio::test]
#[ignore = "20 s: make chaos"]
async fn latency_and_loss_on_one_instance_steer_traffic_away_and_deadlines_hold() {
    let Some(world) = World::start().await else {
        return;
    };
    let a = world.content(0).host.clone();
    let port = world.grpc_port(0).await;
    let impairment = world
        .net
        .impair(&a, Duration::from_millis(200), 5, port)
        .unwrap();
    let (a0, b0) = (world.served(0).await, world.served(1).await);
    let started = Instant::now();
    let load = Load::start(world.stack.url(LIST), 4);
    tokio::time::sleep(Duration::from_secs(20)).await;
    let report = load.stop(started).await;
    let (a1, b1) = (world.served(0).await, world.served(1).await);
    let share = (a1 - a0) / ((a1 - a0) + (b1 - b0)).max(1.0);
    let mechanism = impairment.mechanism();
    println!(
        "CHAOS 200 ms + 5 % loss on one instance ({mechanism}): {} requests, {} failed; the slow instance served {:.1} % of the list calls",
        report.requests,
        report.failures,
        share * 100.0
    );
    row(
        "200 ms + 5 % loss on one instance",
        report.requests,
        report.failures,
        &format!("slow instance served {:.1} % ({mechanism})", share * 100.0),
    );
    assert_eq!(report.failures, 0, "deadlines held: {report:?}");
    assert!(share < 0.25, "most traffic went elsewhere: {share}");
}

#[tokio::test]
async fn the_gateway_cut_off_from_the_etcd_member_it_watches_switches_members() {
    let Some(world) = World::start().await else {
        return;
    };
    let load = Load::start(world.stack.url(LIST), 2);
    let started = Instant::now();
    // One member after the other: whichever carries the watch, one round cuts
    // it (the watch only moves when its member is cut).
    let mut rounds = Vec::new();
    for member in 0..world.cluster.members.len() {
        let host = world.cluster.members[member].host.clone();
        world.net.cut(&world.gateway, &host);
        let cut = Instant::now();
        let (written, delivered) = watch_delivery(&world.stack, cut).await;
        world.net.heal(&world.gateway);
        rounds.push((member, delivered - written));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let report = load.stop(started).await;
    let worst = rounds.iter().map(|(_, d)| *d).max().unwrap();
    println!(
        "CHAOS partition gateway|etcd member: {} requests, {} failed; a change reached the gateway after (member, delay) {rounds:?}; worst {worst:?}",
        report.requests, report.failures
    );
    row(
        "partition: gateway | its etcd member",
        report.requests,
        report.failures,
        &format!(
            "watch moved, change seen {} after the cut (worst of 3)",
            secs(Some(worst))
        ),
    );
    assert_eq!(report.failures, 0, "{report:?}");
}
