//! The guest agent's channel where the VMM has no vsock a guest can be
//! saved with: one virtio-serial port (QEMU) carrying many connections.
//!
//! - [`frame`] — the wire format, and finding a frame boundary again after
//!   a restore cut a frame in two
//! - [`link`] — one end: streams, credit-based flow control, the in-band
//!   reset (HELLO) a new host end starts with
//! - `banger-relay` (the binary) — the host end: serves the VM's vsock
//!   socket path with Firecracker's `CONNECT <port>` handshake, so the
//!   host's agent client is the same for both VMMs

pub mod frame;
pub mod link;

pub use link::{Accepted, Link, Side};
