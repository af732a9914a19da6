//! `/v1/vms`: create, inspect, start, stop, suspend, resume, kill, change
//! and delete VMs.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use banger_api::{
    CloneVmRequest, CreateVmRequest, KillRequest, SshTarget, UpdateVmRequest, Vm, VmPort, VmStats,
    VmmStatus,
};
use serde::Deserialize;

use super::stream::{stream, to_completion, Reply};
use super::AppState;

#[derive(Deserialize)]
pub struct ForceQuery {
    #[serde(default)]
    force: bool,
}

pub async fn list(State(app): State<AppState>) -> Reply<Vec<Vm>> {
    let vms = app.vms.list()?;
    Ok(Json(
        vms.into_iter()
            .map(|vm| app.vms.with_saved_size(vm))
            .collect(),
    ))
}

pub async fn get(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<Vm> {
    Ok(Json(app.vms.with_saved_size(app.vms.resolve(&vm)?)))
}

pub async fn create(State(app): State<AppState>, Json(request): Json<CreateVmRequest>) -> Response {
    let vms = app.vms.clone();
    stream(&app.inflight, move |reporter| vms.create(request, reporter))
}

pub async fn start(State(app): State<AppState>, Path(vm): Path<String>) -> Response {
    let vms = app.vms.clone();
    stream(&app.inflight, move |reporter| vms.start(vm, reporter))
}

pub async fn restart(State(app): State<AppState>, Path(vm): Path<String>) -> Response {
    let vms = app.vms.clone();
    stream(&app.inflight, move |reporter| vms.restart(vm, reporter))
}

pub async fn stop(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Reply<Vm> {
    // Run to completion even if the client goes away.
    to_completion(&app.inflight, app.vms.clone().stop(vm, q.force)).await
}

pub async fn clone(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Json(request): Json<CloneVmRequest>,
) -> Response {
    let vms = app.vms.clone();
    stream(&app.inflight, move |reporter| {
        vms.clone_vm(vm, request.name, reporter)
    })
}

pub async fn suspend(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<Vm> {
    // A suspend half done by a client that went away would leave the guest paused.
    to_completion(&app.inflight, app.vms.clone().suspend(vm)).await
}

pub async fn resume(State(app): State<AppState>, Path(vm): Path<String>) -> Response {
    let vms = app.vms.clone();
    stream(&app.inflight, move |reporter| vms.resume(vm, reporter))
}

pub async fn delete(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Reply<Vm> {
    to_completion(&app.inflight, app.vms.clone().delete(vm, q.force)).await
}

pub async fn kill(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Json(req): Json<KillRequest>,
) -> Reply<Vm> {
    to_completion(&app.inflight, app.vms.clone().kill(vm, req.signal)).await
}

pub async fn update(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Json(req): Json<UpdateVmRequest>,
) -> Reply<Vm> {
    to_completion(&app.inflight, app.vms.clone().update(vm, req)).await
}

pub async fn ports(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<Vec<VmPort>> {
    Ok(Json(app.vms.ports(&vm).await?))
}

pub async fn stats(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<VmStats> {
    Ok(Json(app.vms.stats(&vm).await?))
}

/// Every VM's Host block; the file is rewritten first, so it is current.
pub async fn ssh_config(State(app): State<AppState>) -> Reply<banger_api::SshConfig> {
    app.vms.write_ssh_config();
    Ok(Json(banger_api::SshConfig {
        path: app.paths.ssh_config(),
        text: app.vms.ssh_config()?,
    }))
}

pub async fn ssh_target(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<SshTarget> {
    Ok(Json(app.vms.ssh_target(&vm)?))
}

pub async fn vmm(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<VmmStatus> {
    Ok(Json(app.vms.vmm_status(&vm).await?))
}

pub async fn prune(
    State(app): State<AppState>,
    Json(req): Json<banger_api::PruneRequest>,
) -> Reply<Vec<Vm>> {
    let stopped_for = std::time::Duration::from_secs(req.stopped_for_secs);
    to_completion(
        &app.inflight,
        app.vms.clone().prune(stopped_for, req.dry_run),
    )
    .await
}

pub async fn forwards(
    State(app): State<AppState>,
    Path(vm): Path<String>,
) -> Reply<Vec<banger_api::Forward>> {
    Ok(Json(app.vms.forwards_of(&vm)?))
}

pub async fn add_forward(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Json(forward): Json<banger_api::Forward>,
) -> Reply<Vec<banger_api::Forward>> {
    Ok(Json(app.vms.add_forward(&vm, forward).await?))
}

pub async fn remove_forward(
    State(app): State<AppState>,
    Path((vm, proto, port)): Path<(String, String, u16)>,
) -> Reply<Vec<banger_api::Forward>> {
    let proto = banger_api::Proto::parse(&proto).unwrap_or(banger_api::Proto::Tcp);
    Ok(Json(app.vms.remove_forward(&vm, proto, port).await?))
}

/// `vm sync`: the file_sync entries copied again; the warnings, if any.
pub async fn sync(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<Vec<String>> {
    Ok(Json(app.vms.sync(&vm).await?))
}
