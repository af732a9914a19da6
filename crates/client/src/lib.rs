//! Clients for local HTTP APIs on Unix sockets.
//!
//! - [`uds`] — one request over a Unix socket (used for bangerd and Firecracker)
//! - [`daemon`] — the typed client of bangerd's versioned API
//! - [`agent`] — the guest agent, over a VM's hybrid vsock socket
//! - [`transfer`] — files into and out of a guest, as tar streams through it

pub mod agent;
pub mod daemon;
pub mod transfer;
pub mod uds;

pub use daemon::{ClientError, DaemonClient};
