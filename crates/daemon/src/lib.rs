//! bangerd: owns VMs, images and every host resource made for them.
//!
//! - [`entry`] — the process: paths, config, logging, one daemon per user
//! - [`app`] — the composition root that makes every part below
//! - [`server`] — the versioned HTTP API on the Unix socket, and the one
//!   place internal errors become API errors
//! - [`vms`] — VM orchestration (create, boot, lifecycle, teardown, reconcile)
//! - [`images`] — image resolution, builds and registration
//! - [`caps`] — the capability pipeline: work disk, TAP, NAT, DNS
//! - [`journal`] — undoing recorded host resources
//! - [`drivers`] — which VMM runs a VM (injected, like [`host`])
//! - [`host`] — the host integrations behind traits
//! - [`dns`] — the built-in `.vm` DNS server
//! - [`doctor`] — readiness checks, served to `banger doctor`
//! - [`runtime`] — the runtime bundle it uses
//! - [`config`], [`guest_config`], [`progress`], [`crash`]

pub mod app;
pub mod caps;
pub mod config;
pub mod crash;
pub mod dns;
pub mod doctor;
pub mod drivers;
pub mod entry;
pub mod guest_config;
pub mod host;
pub mod images;
pub mod journal;
pub mod kernels;
pub mod privilege;
pub mod progress;
pub mod runtime;
pub mod server;
pub mod vms;
