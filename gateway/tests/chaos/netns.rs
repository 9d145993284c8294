//! Hosts with addresses of their own: each "host" is a network namespace on a
//! bridge of the test's own (10.213.S.0/24, S unique per test), so links can
//! be cut between two hosts while both keep talking to everybody else.
//!
//! A cut is an nftables drop of the pair's packets inside the first host
//! (silent, like a partition: no RST, no ICMP); impairment is `tc netem` on
//! the host's link, or nftables loss and a delaying relay without netem. Everything is named `nr<S>…` and removed on drop and, for
//! leftovers of a killed run, before S is used again.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::relay::Relay;
use crate::stack::Host;

pub struct Net {
    subnet: u32,
    bridge: String,
    hosts: Vec<String>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args)
}

/// Kills every process in `netns` and deletes it.
fn remove_netns(netns: &str) {
    if let Ok(pids) = ip(&["netns", "pids", netns]) {
        for pid in pids.split_whitespace() {
            let _ = run("kill", &["-KILL", pid]);
        }
    }
    let _ = ip(&["netns", "del", netns]);
}

impl Net {
    /// A fresh bridge; `None`, after saying why, where network namespaces
    /// cannot be created (not root, no iproute2): the caller skips.
    pub fn create() -> Option<Self> {
        let pid = std::process::id();
        for _ in 0..250 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let subnet = 1 + (pid.wrapping_mul(7).wrapping_add(n)) % 250;
            let bridge = format!("nrbr{subnet}");
            if let Ok(shown) = ip(&["-o", "link", "show", "dev", &bridge]) {
                let owner = shown
                    .split("newsroom-chaos-pid-")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .unwrap_or_default()
                    .to_owned();
                if owner != pid.to_string()
                    && !owner.is_empty()
                    && std::path::Path::new(&format!("/proc/{owner}")).exists()
                {
                    continue;
                }
            }
            Self::clean(subnet);
            let net = Self {
                subnet,
                bridge: bridge.clone(),
                hosts: Vec::new(),
            };
            let created = (|| {
                ip(&["link", "add", "name", &bridge, "type", "bridge"])?;
                ip(&[
                    "link",
                    "set",
                    "dev",
                    &bridge,
                    "alias",
                    &format!("newsroom-chaos-pid-{pid}"),
                ])?;
                ip(&[
                    "addr",
                    "add",
                    &format!("10.213.{subnet}.1/24"),
                    "dev",
                    &bridge,
                ])?;
                ip(&["link", "set", "dev", &bridge, "up"])?;
                // Namespaces may be refused where a bridge is not (an
                // unprivileged container): find out before any process starts.
                let probe = format!("nr{subnet}-probe");
                ip(&["netns", "add", &probe])?;
                let nft = ip(&["netns", "exec", &probe, "nft", "list", "ruleset"]);
                let _ = ip(&["netns", "del", &probe]);
                nft?;
                Ok::<_, String>(())
            })();
            return match created {
                Ok(()) => Some(net),
                Err(e) => {
                    drop(net);
                    println!(
                        "SKIP: cannot create network namespaces here (root, iproute2 and nftables are needed): {e}"
                    );
                    None
                }
            };
        }
        println!("SKIP: no free subnet for a test network");
        None
    }

    /// Removes what an earlier (killed) run left under `subnet`.
    fn clean(subnet: u32) {
        let prefix = format!("nr{subnet}-");
        if let Ok(list) = ip(&["netns", "list"]) {
            for line in list.lines() {
                let name = line.split_whitespace().next().unwrap_or_default();
                if name.starts_with(&prefix) {
                    remove_netns(name);
                }
            }
        }
        Self::remove_links(&format!("nr{subnet}v"));
        let _ = ip(&["link", "del", &format!("nrbr{subnet}")]);
    }

    /// Deletes the root-side veth ends named `prefix…` (the kernel removes
    /// them with their namespace, but only once it has torn it down).
    fn remove_links(prefix: &str) {
        if let Ok(links) = ip(&["-o", "link", "show"]) {
            for line in links.lines() {
                let name = line
                    .split(": ")
                    .nth(1)
                    .and_then(|n| n.split('@').next())
                    .unwrap_or_default();
                if name.starts_with(prefix) {
                    let _ = ip(&["link", "del", name]);
                }
            }
        }
    }

    /// A new host called `label` on the bridge, with its own address.
    pub fn host(&mut self, label: &str) -> Host {
        let k = self.hosts.len() + 2;
        let netns = format!("nr{}-{label}", self.subnet);
        let (outer, inner) = (
            format!("nr{}v{k}", self.subnet),
            format!("nr{}p{k}", self.subnet),
        );
        let address = format!("10.213.{}.{k}", self.subnet);
        self.hosts.push(netns.clone());
        let steps: [&[&str]; 9] = [
            &["netns", "add", &netns],
            &[
                "link", "add", "name", &outer, "type", "veth", "peer", "name", &inner,
            ],
            &["link", "set", "dev", &inner, "netns", &netns],
            &["-n", &netns, "link", "set", "dev", &inner, "name", "eth0"],
            &[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                "eth0",
            ],
            &["-n", &netns, "link", "set", "dev", "eth0", "up"],
            &["-n", &netns, "link", "set", "dev", "lo", "up"],
            &["link", "set", "dev", &outer, "master", &self.bridge],
            &["link", "set", "dev", &outer, "up"],
        ];
        for step in steps {
            ip(step).unwrap();
        }
        Host {
            netns: Some(netns),
            ip: address,
        }
    }

    fn nft(host: &Host, args: &[&str]) -> Result<String, String> {
        let netns = host.netns.as_deref().unwrap();
        let mut all = vec!["netns", "exec", netns, "nft"];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Drops every packet between `from` and `to` (in both directions, at
    /// `from`): a partition between the two, silent as a real one.
    pub fn cut(&self, from: &Host, to: &Host) {
        Self::nft(from, &["add", "table", "inet", "chaos"]).unwrap();
        Self::nft(
            from,
            &["add chain inet chaos out { type filter hook output priority 0 ; policy accept ; }"],
        )
        .unwrap();
        Self::nft(
            from,
            &["add chain inet chaos in { type filter hook input priority 0 ; policy accept ; }"],
        )
        .unwrap();
        Self::nft(
            from,
            &[&format!("add rule inet chaos out ip daddr {} drop", to.ip)],
        )
        .unwrap();
        Self::nft(
            from,
            &[&format!("add rule inet chaos in ip saddr {} drop", to.ip)],
        )
        .unwrap();
    }

    /// Lifts every cut made at `from`.
    pub fn heal(&self, from: &Host) {
        let _ = Self::nft(from, &["delete", "table", "inet", "chaos"]);
    }

    /// `delay` and `loss_percent` % loss on what `host` sends: `tc netem` on
    /// its link; where the kernel has no netem, an nftables rule drops the
    /// share of its outgoing packets (`numgen random`) and a [`Relay`] in
    /// the host delays what the service on `port` sends.
    pub fn impair(
        &self,
        host: &Host,
        delay: Duration,
        loss_percent: u32,
        port: u16,
    ) -> Result<Impairment, String> {
        let netns = host.netns.as_deref().unwrap();
        let (delay_ms, loss) = (
            format!("{}ms", delay.as_millis()),
            format!("{loss_percent}%"),
        );
        let netem = ip(&[
            "netns", "exec", netns, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay",
            &delay_ms, "loss", &loss,
        ]);
        match netem {
            Ok(_) => return Ok(Impairment::Netem),
            Err(e) if !e.contains("qdisc kind is unknown") => return Err(e),
            Err(_) => {}
        }
        for rule in [
            "add table inet impair",
            "add chain inet impair out { type filter hook output priority 0 ; policy accept ; }",
            &format!(
                "add rule inet impair out oifname \"eth0\" numgen random mod 100 < {loss_percent} drop"
            ),
        ] {
            Self::nft(host, &[rule])?;
        }
        let upstream = SocketAddr::new(host.ip.parse().unwrap(), port);
        let (relay, relay_port) = Relay::start(netns, upstream, delay)?;
        // Only connections from other hosts (the relay's own, to the
        // service, stay on the host).
        for rule in [
            "add table ip impairnat",
            "add chain ip impairnat pre { type nat hook prerouting priority -100 ; }",
            &format!(
                "add rule ip impairnat pre iifname \"eth0\" tcp dport {port} redirect to :{relay_port}"
            ),
        ] {
            Self::nft(host, &[rule])?;
        }
        // A redirect applies to new connections only: reset the callers'
        // open ones, so that they reconnect through the relay.
        ip(&[
            "netns",
            "exec",
            netns,
            "ss",
            "-K",
            "state",
            "established",
            "sport",
            "=",
            &format!(":{port}"),
        ])?;
        Ok(Impairment::Relay { _relay: relay })
    }
}

/// What produced the latency and loss of [`Net::impair`].
pub enum Impairment {
    Netem,
    /// nftables loss and a delaying relay; runs until dropped.
    Relay {
        _relay: Relay,
    },
}

impl Impairment {
    pub fn mechanism(&self) -> &'static str {
        match self {
            Self::Netem => "tc netem",
            Self::Relay { .. } => "nftables numgen loss + delaying relay (no sch_netem)",
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for netns in &self.hosts {
            remove_netns(netns);
        }
        Self::remove_links(&format!("nr{}v", self.subnet));
        let _ = ip(&["link", "del", &self.bridge]);
    }
}
