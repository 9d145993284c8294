//! Discovery and shutdown under real process failures: the four binaries run
//! as separate processes against a private etcd (or a private 3-member etcd
//! cluster, `cluster`), on 127.0.0.1 or on network namespaces of their own
//! (`partition`); the tests SIGKILL, SIGTERM, restart and cut them apart
//! under steady load and report what clients saw.
//!
//! `make chaos` (scripts/chaos.sh) runs them all, the `#[ignore]`d long ones
//! too, and prints a table of the figures.

#![allow(clippy::unwrap_used)]

mod cluster;
mod degradation;
mod etcd_cluster;
mod load;
mod netns;
mod partition;
mod relay;
mod scenarios;
mod stack;
