//! The root helper. A daemon that runs as a user cannot change the host's
//! network; this small process, started by root for the users it serves
//! (`--owner`), performs exactly banger's typed operations
//! ([`banger_host::privileged::Op`]) for them and nothing else:
//!
//! - [`protocol`] — one JSON request per line on a Unix socket, one answer
//! - [`lease`] — each owner's own bridge and subnet, so users stay apart
//! - [`policy`] — what an owner may ask: its bridge, its subnet, TAPs with
//!   banger's prefix that it owns, NAT rules with banger's tag in its subnet
//! - [`server`] — the socket, the caller checked with `SO_PEERCRED`
//! - [`client`] — the daemon's side: a [`banger_host::net::Network`]
//! - [`devices`] — `/dev/kvm` and `/dev/net/tun` opened up to the owners
//!
//! There is no "run this" request; every argument is validated before
//! anything runs, and every operation and refusal is logged with the uid.

pub mod client;
pub mod devices;
pub mod install;
pub mod lease;
pub mod policy;
pub mod protocol;
pub mod server;
pub mod world;

/// Where the helper listens unless told otherwise.
pub use banger_host::error::DEFAULT_HELPER_SOCKET as DEFAULT_SOCKET;
