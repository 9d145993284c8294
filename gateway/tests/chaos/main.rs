//! Discovery and shutdown under real process failures: the four binaries run
//! as separate processes against a private etcd; the tests SIGKILL, SIGTERM
//! and restart them under steady load and report what clients saw.
//!
//! `make chaos` runs the SIGKILL failover and the rolling restart and prints
//! their figures.

#![allow(clippy::unwrap_used)]

mod cluster;
mod degradation;
mod etcd_cluster;
mod load;
mod netns;
mod partition;
mod scenarios;
mod stack;
