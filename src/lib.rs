//! carte: a low-level OCI container runtime, a drop-in for runc.
//!
//! The binary (src/main.rs) only parses the command line and dispatches to
//! `cli`; everything else lives in the library so it can be tested.

// First: its macro is used by the modules below.
#[macro_use]
pub mod failpoint;

pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod cloned_binary;
pub mod config;
pub mod container;
pub mod hooks;
pub mod intelrdt;
pub mod logging;
pub mod lsm;
pub mod namespaces;
pub mod netdev;
pub mod process;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod signal;
pub mod sys;
pub mod tty;
