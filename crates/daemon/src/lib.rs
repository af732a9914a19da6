//! bangerd: owns VMs, images and every host resource made for them.
//!
//! - [`config`] — `config.toml`
//! - [`app`] — shared state and the host integrations behind traits
//! - [`caps`] — the capability pipeline: work disk, TAP, NAT, DNS
//! - [`dns`] — the built-in `.vm` DNS server
//! - [`server`] — the versioned HTTP API on the Unix socket
//! - [`vms`] — VM orchestration (create, boot, lifecycle, monitor, reconcile)
//! - [`doctor`] — readiness checks shared by `banger doctor` and the daemon
//! - [`images`] — image resolution and builds
//! - [`guest_config`] — files that tell a guest who it is

pub mod app;
pub mod caps;
pub mod config;
pub mod crash;
pub mod dns;
pub mod doctor;
pub mod entry;
pub mod errors;
pub mod guest_config;
pub mod images;
pub mod progress;
pub mod server;
pub mod vms;
