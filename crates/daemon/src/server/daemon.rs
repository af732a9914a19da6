//! `/v1/daemon`, `/v1/doctor`, `/v1/runtime`: the daemon itself, its
//! readiness checks, and the runtime bundle it uses.

use axum::extract::State;
use axum::Json;
use banger_api::{
    ApiError, BundleSummary, Check, DaemonStatus, FetchRuntimeRequest, RuntimeInfo, VmState,
};

use super::edge::Failure;
use super::stream::{to_completion, Reply};
use super::AppState;
use crate::dns::DnsStatus;
use crate::doctor;

pub async fn status(State(app): State<AppState>) -> Reply<DaemonStatus> {
    let dns = app.dns.status();
    Ok(Json(DaemonStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        socket: app.paths.socket(),
        log: app.paths.log_file(),
        dns: match &dns {
            DnsStatus::Serving(addr) => addr.to_string(),
            _ => app.config.dns_listen.clone(),
        },
        dns_error: match dns {
            DnsStatus::Failed(e) => Some(e),
            DnsStatus::NotStarted => Some("not started".into()),
            DnsStatus::Serving(_) => None,
        },
        state_dir: app.paths.state_dir.clone(),
        tap_pool_idle: app.tap_pool.idle_count(),
        tap_pool_size: app.tap_pool.size(),
        vmm: app.drivers.default_kind(),
        accel: app.accel(),
    }))
}

pub async fn shutdown(State(app): State<AppState>) -> Reply<serde_json::Value> {
    tracing::info!("shutdown requested over the API; VMs keep running");
    app.shutdown.notify_one();
    Ok(Json(serde_json::json!({"stopping": true})))
}

/// The readiness checks, as this daemon sees the host.
pub async fn doctor(State(app): State<AppState>) -> Reply<Vec<Check>> {
    let nat_vms = app
        .store
        .list_vms()?
        .into_iter()
        .filter(|vm| vm.nat && vm.state == VmState::Running)
        .map(|vm| vm.name)
        .collect();
    let (ip_forward, forward_writable) = doctor::Inputs::host_forwarding();
    let images_dir = app.images.dir();
    let inputs = doctor::Inputs {
        paths: &app.paths,
        config: &app.config,
        images_dir: &images_dir,
        dns: app.dns.status(),
        nat_vms,
        ip_forward,
        forward_writable,
    };
    // Some checks run programs (`--version`): off the async workers.
    let checks = tokio::task::block_in_place(|| doctor::run(&inputs));
    Ok(Json(checks))
}

fn runtime_info(config: &crate::config::Config) -> RuntimeInfo {
    let location = banger_runtime::resolve::locate_here(config.runtime_dir.clone());
    let bundle = banger_runtime::Bundle::open(&location.dir);
    RuntimeInfo {
        exists: location.dir.exists(),
        source: location.source.to_string(),
        bundle: bundle.as_ref().ok().map(|b| BundleSummary {
            kernel: b.manifest.default_kernel.clone(),
            kernel_version: b.manifest.kernel_version.clone(),
            rootfs: b.manifest.default_rootfs.clone(),
            binaries: b.manifest.binaries.clone(),
        }),
        error: bundle.err().map(|e| banger_api::error::chain(&e)),
        dir: location.dir,
    }
}

pub async fn runtime(State(app): State<AppState>) -> Reply<RuntimeInfo> {
    Ok(Json(runtime_info(&app.config)))
}

/// Installs a bundle where this daemon looks for it.
pub async fn fetch_runtime(
    State(app): State<AppState>,
    Json(request): Json<FetchRuntimeRequest>,
) -> Reply<RuntimeInfo> {
    let config = app.config.clone();
    to_completion(&app.inflight, async move {
        let location = banger_runtime::resolve::locate_here(config.runtime_dir.clone());
        tokio::task::spawn_blocking(move || {
            banger_runtime::fetch::fetch(&request.manifest, &location.dir)
        })
        .await
        .map_err(|e| ApiError::internal(format!("the fetch panicked: {e}")))??;
        Ok::<_, Failure>(runtime_info(&config))
    })
    .await
}
