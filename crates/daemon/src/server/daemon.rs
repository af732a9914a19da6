//! `/v1/daemon`, `/v1/doctor`, `/v1/runtime`: the daemon itself, its
//! readiness checks, and the runtime bundle it uses.

use axum::extract::State;
use axum::Json;
use banger_api::{Check, DaemonStatus, FetchRuntimeRequest, RuntimeInfo, VmState};

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
        crash_points: cfg!(feature = "crash-points"),
        network: app.network.clone(),
    }))
}

pub async fn shutdown(State(app): State<AppState>) -> Reply<serde_json::Value> {
    tracing::info!("shutdown requested over the API; VMs keep running");
    app.shutdown.notify_one();
    Ok(Json(serde_json::json!({"stopping": true})))
}

/// The readiness checks, as this daemon sees the host.
pub async fn doctor(State(app): State<AppState>) -> Reply<Vec<Check>> {
    let nat_vms: Vec<String> = app
        .store
        .list_vms()?
        .into_iter()
        .filter(|vm| vm.nat && vm.state == VmState::Running)
        .map(|vm| vm.name)
        .collect();
    let (paths, config) = (app.paths.clone(), app.config.clone());
    let (images_dir, dns) = (app.images.dir(), app.dns.status());
    let (store, vmm) = (app.store.clone(), app.drivers.default_kind());
    let network = app.network.clone();
    // Some checks run programs (`--version`): off the async workers.
    let checks = tokio::task::spawn_blocking(move || {
        let (ip_forward, forward_writable) = doctor::Inputs::host_forwarding();
        doctor::run(&doctor::Inputs {
            paths: &paths,
            config: &config,
            images_dir: &images_dir,
            store: &store,
            network: &network,
            vmm,
            dns,
            nat_vms,
            ip_forward,
            forward_writable,
        })
    })
    .await?;
    Ok(Json(checks))
}

pub async fn runtime(State(app): State<AppState>) -> Reply<RuntimeInfo> {
    Ok(Json(crate::runtime::info(&app.config)))
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
        .await??;
        Ok::<_, Failure>(crate::runtime::info(&config))
    })
    .await
}
