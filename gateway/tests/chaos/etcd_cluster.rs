//! A private three-member etcd cluster whose members a test may kill, stop,
//! restart or wipe, each on a [`Host`] of its own (127.0.0.1 with distinct
//! ports, or a network namespace of a [`crate::netns::Net`]).
//!
//! Election settings are etcd's defaults (100 ms heartbeat, 1 s election
//! timeout), so the figures measured are the ones a deployment sees.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::stack::Host;
use kit::testing;

pub struct Member {
    pub name: String,
    pub host: Host,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Member {
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host.ip, self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://{}:{}", self.host.ip, self.peer_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct EtcdCluster {
    pub members: Vec<Member>,
    data: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts one member on each of `hosts` and waits until every one
    /// answers a linearizable read (i.e. the cluster has a leader).
    ///
    /// A member's ports are free when picked, not when etcd binds them: in
    /// between, another test's connection may take one as its local port,
    /// and that member never serves (seen once in `make test` on 2 busy
    /// cores). Then the whole cluster starts again on other ports, up to
    /// three times.
    pub async fn start(hosts: Vec<Host>) -> Self {
        for _ in 0..3 {
            let mut cluster = Self::spawn_all(hosts.clone());
            let mut serving = true;
            for i in 0..cluster.members.len() {
                if !cluster.try_wait_serving(i).await {
                    serving = false;
                    break;
                }
            }
            if serving {
                return cluster;
            }
            // Dropping it kills the members and deletes their data.
        }
        panic!("a three-member etcd cluster did not come up on three sets of ports");
    }

    fn spawn_all(hosts: Vec<Host>) -> Self {
        let members = hosts
            .into_iter()
            .enumerate()
            .map(|(i, host)| Member {
                name: format!("m{i}"),
                host,
                client_port: testing::free_port(),
                peer_port: testing::free_port(),
                child: None,
            })
            .collect();
        let mut cluster = Self {
            members,
            data: tempfile::tempdir().unwrap(),
        };
        for i in 0..cluster.members.len() {
            cluster.spawn(i, "new");
        }
        cluster
    }

    /// Every client URL, as each process is given them.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// `--initial-cluster` of the members as they are now.
    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn data_dir(&self, i: usize) -> PathBuf {
        self.data.path().join(&self.members[i].name)
    }

    fn spawn(&mut self, i: usize, state: &str) {
        let initial = self.initial_cluster();
        let data_dir = self.data_dir(i);
        let member = &self.members[i];
        let (client, peer) = (member.endpoint(), member.peer_url());
        let child = member
            .host
            .command("etcd")
            .args(["--name", &member.name, "--data-dir"])
            .arg(data_dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", state])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd is not installed; run `make test`, which installs it");
        self.members[i].child = Some(child);
    }

    /// Waits until member `i` answers a linearizable read.
    pub async fn wait_serving(&mut self, i: usize) {
        if !self.try_wait_serving(i).await {
            panic!("etcd member {} did not come up", self.members[i].endpoint());
        }
    }

    /// Whether member `i` answers a linearizable read before it exits (a
    /// port taken) or 300 tries pass.
    async fn try_wait_serving(&mut self, i: usize) -> bool {
        let endpoint = self.members[i].endpoint();
        for _ in 0..300 {
            if let Ok(mut client) = etcd_client::Client::connect([&endpoint], None).await
                && tokio::time::timeout(Duration::from_secs(1), client.get("health-probe", None))
                    .await
                    .is_ok_and(|r| r.is_ok())
            {
                return true;
            }
            let exited = self.members[i]
                .child
                .as_mut()
                .is_none_or(|child| child.try_wait().is_ok_and(|status| status.is_some()));
            if exited {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// SIGKILL; the data directory stays.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a killed member again on its data directory.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, "new");
    }

    /// SIGKILLs member `i` and deletes its data directory: a replaced disk
    /// or a pod whose volume was lost.
    pub fn wipe(&mut self, i: usize) {
        self.kill(i);
        let _ = std::fs::remove_dir_all(self.data_dir(i));
    }

    /// Starts a wiped member as a new member of the existing cluster (after
    /// `scripts/etcd-replace-member.sh` re-added it).
    pub fn rejoin(&mut self, i: usize) {
        self.spawn(i, "existing");
    }

    /// The index of the current leader, asked of the running members.
    pub async fn leader(&self) -> usize {
        for _ in 0..100 {
            for member in self.members.iter().filter(|m| m.is_running()) {
                let Ok(mut client) = etcd_client::Client::connect([member.endpoint()], None).await
                else {
                    continue;
                };
                let Ok(Ok(status)) =
                    tokio::time::timeout(Duration::from_secs(1), client.status()).await
                else {
                    continue;
                };
                let leader = status.leader();
                if leader == 0 {
                    continue;
                }
                let Ok(list) = client.member_list().await else {
                    continue;
                };
                if let Some(found) = list.members().iter().find(|m| m.id() == leader) {
                    let name = found.name().to_owned();
                    if let Some(at) = self.members.iter().position(|m| m.name == name) {
                        return at;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the cluster has no leader");
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
