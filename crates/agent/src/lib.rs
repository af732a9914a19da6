//! `banger-agent`: the small service in every banger guest. The host's
//! daemon reaches it over vsock (Firecracker's hybrid vsock socket, or
//! vhost-device-vsock under QEMU) and asks it for health, listening ports,
//! guest stats, and to run commands. The protocol is in
//! [`banger_api::agent`].
//!
//! - [`ports`] — listening sockets and their processes, from /proc
//! - [`stats`] — load, memory, disk use
//! - [`exec`] — commands with streamed stdin, stdout, stderr and exit code
//! - [`identity`] — a restored guest taking its own identity
//! - [`serial`] — the channel over a virtio-serial port (QEMU guests that
//!   can be saved), where vsock is not used

pub mod exec;
pub mod identity;
pub mod ports;
pub mod serial;
pub mod stats;

use axum::routing::{get, post};
use axum::{Json, Router};
use banger_api::agent::{GuestStats, Health, Listener};

pub fn router() -> Router {
    Router::new().nest(
        banger_api::agent::AGENT_PREFIX,
        Router::new()
            .route("/health", get(health))
            .route("/ports", get(ports))
            .route("/stats", get(guest_stats))
            .route("/exec", post(exec::exec))
            .route("/exec/{pid}/kill", post(exec::kill))
            .route("/identity", post(identity::identity)),
    )
}

async fn health() -> Json<Health> {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap_or_default();
    Json(Health {
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_secs: uptime
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
        boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .unwrap_or_default()
            .trim()
            .to_string(),
    })
}

async fn ports() -> Json<Vec<Listener>> {
    // /proc walks block: keep them off the (single) runtime thread.
    Json(
        tokio::task::spawn_blocking(ports::listeners)
            .await
            .unwrap_or_default(),
    )
}

async fn guest_stats() -> Json<GuestStats> {
    Json(
        tokio::task::spawn_blocking(stats::stats)
            .await
            .expect("stats do not panic"),
    )
}
