//! The HTTP API on the daemon's Unix socket.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use crate::dns::DnsStatus;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use banger_api::{
    ApiError, BuildImageRequest, CreateVmRequest, DaemonStatus, Event, KillRequest, SshTarget,
    UpdateVmRequest, VmPort, VmState, VmStats, API_PREFIX,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::app::App;
use crate::errors::{self, OpResult};
use crate::images;
use crate::progress::Reporter;
use crate::vms::{create, lifecycle, ports, settings, stats, VmFiles};

type AppState = Arc<App>;

pub fn router(app: AppState) -> Router {
    let api = Router::new()
        .route("/daemon", get(status))
        .route("/daemon/shutdown", post(shutdown))
        .route("/vms", get(list_vms).post(create_vm))
        .route("/vms/{vm}", get(get_vm).delete(delete_vm).patch(update_vm))
        .route("/vms/{vm}/start", post(start_vm))
        .route("/vms/{vm}/stop", post(stop_vm))
        .route("/vms/{vm}/restart", post(restart_vm))
        .route("/vms/{vm}/kill", post(kill_vm))
        .route("/vms/{vm}/stats", get(vm_stats))
        .route("/vms/{vm}/ports", get(vm_ports))
        .route("/vms/{vm}/ssh", get(ssh_target))
        .route("/images", get(list_images).post(build_image))
        // PUT registers (or updates in place) an image made elsewhere.
        .route(
            "/images/{image}",
            get(get_image).delete(delete_image).put(register_image),
        );
    Router::new()
        .nest(API_PREFIX, api)
        .fallback(not_found)
        .with_state(app)
}

/// An [`ApiError`] as an HTTP response.
pub struct Failure(ApiError);

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

type Reply<T> = Result<Json<T>, Failure>;

async fn not_found() -> Failure {
    Failure(
        ApiError::not_found("no such API route")
            .with_hint("client and daemon versions may differ; restart the daemon"),
    )
}

/// Runs a long operation in its own task (a client that disconnects does
/// not cancel it half-way) and streams its progress as JSON lines.
fn stream_operation<T, F, Fut>(app: &App, operation: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(Reporter) -> Fut,
    Fut: Future<Output = OpResult<T>> + Send + 'static,
{
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = oneshot::channel();
    let future = operation(Reporter::new(progress_tx));
    let inflight = app.inflight.clone();
    tokio::spawn(async move {
        // Held while the operation runs: daemon shutdown waits for it.
        let _running = inflight.read_owned().await;
        let _ = done_tx.send(future.await);
    });
    fn line<T: Serialize>(event: &Event<T>) -> Result<Bytes, Infallible> {
        let mut bytes = serde_json::to_vec(event).expect("events serialise");
        bytes.push(b'\n');
        Ok(Bytes::from(bytes))
    }
    let stream = futures::stream::unfold(
        (progress_rx, Some(done_rx)),
        |(mut progress, done)| async move {
            let mut done = done?;
            tokio::select! {
                biased;
                Some(p) = progress.recv() => Some((line::<T>(&Event::Progress(p)), (progress, Some(done)))),
                result = &mut done => {
                    let event = match result {
                        Ok(Ok(value)) => Event::Done { result: value },
                        Ok(Err(error)) => Event::Failed { error },
                        Err(_) => Event::Failed { error: ApiError::internal("the operation panicked; see bangerd.log") },
                    };
                    Some((line(&event), (progress, None)))
                }
            }
        },
    );
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .expect("static response parts")
}

/// Runs an operation in its own task, so it finishes (or rolls back) even
/// if the client disconnects, and answers with its result.
async fn to_completion<T: Send + 'static>(
    app: &App,
    operation: impl Future<Output = OpResult<T>> + Send + 'static,
) -> Reply<T> {
    let inflight = app.inflight.clone();
    let result = tokio::spawn(async move {
        let _running = inflight.read_owned().await;
        operation.await
    })
    .await
    .map_err(|e| ApiError::internal(format!("the operation panicked: {e}")))?;
    Ok(Json(result?))
}

async fn status(State(app): State<AppState>) -> Reply<DaemonStatus> {
    Ok(Json(DaemonStatus {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        socket: app.paths.socket().display().to_string(),
        log: app.paths.log_file().display().to_string(),
        dns: match app.dns.status() {
            DnsStatus::Serving(addr) => addr.to_string(),
            _ => app.config.dns_listen.clone(),
        },
        dns_error: match app.dns.status() {
            DnsStatus::Failed(e) => Some(e),
            DnsStatus::NotStarted => Some("not started".into()),
            DnsStatus::Serving(_) => None,
        },
        state_dir: app.paths.state_dir.display().to_string(),
        tap_pool_idle: app.tap_pool.idle_count(),
        tap_pool_size: app.config.tap_pool_size,
        vmm: app.vmm,
        accel: app.accel().to_string(),
    }))
}

async fn shutdown(State(app): State<AppState>) -> Reply<serde_json::Value> {
    tracing::info!("shutdown requested over the API; VMs keep running");
    app.shutdown.notify_one();
    Ok(Json(serde_json::json!({"stopping": true})))
}

async fn list_vms(State(app): State<AppState>) -> Reply<Vec<banger_api::Vm>> {
    Ok(Json(app.store.list_vms().map_err(errors::store)?))
}

async fn get_vm(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<banger_api::Vm> {
    Ok(Json(app.store.resolve_vm(&vm).map_err(errors::store_ref)?))
}

async fn create_vm(State(app): State<AppState>, Json(request): Json<CreateVmRequest>) -> Response {
    stream_operation(&app.clone(), move |reporter| {
        create::create(app, request, reporter)
    })
}

async fn start_vm(State(app): State<AppState>, Path(vm): Path<String>) -> Response {
    stream_operation(&app.clone(), move |reporter| {
        lifecycle::start(app, vm, reporter)
    })
}

#[derive(Deserialize)]
struct ForceQuery {
    #[serde(default)]
    force: bool,
}

async fn stop_vm(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Reply<banger_api::Vm> {
    // Run to completion even if the client goes away.
    to_completion(&app.clone(), lifecycle::stop(app, vm, q.force)).await
}

async fn delete_vm(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Reply<banger_api::Vm> {
    to_completion(&app.clone(), lifecycle::delete(app, vm, q.force)).await
}

async fn restart_vm(State(app): State<AppState>, Path(vm): Path<String>) -> Response {
    stream_operation(&app.clone(), move |reporter| {
        lifecycle::restart(app, vm, reporter)
    })
}

async fn kill_vm(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Json(req): Json<KillRequest>,
) -> Reply<banger_api::Vm> {
    to_completion(&app.clone(), lifecycle::kill(app, vm, req.signal)).await
}

async fn update_vm(
    State(app): State<AppState>,
    Path(vm): Path<String>,
    Json(req): Json<UpdateVmRequest>,
) -> Reply<banger_api::Vm> {
    to_completion(&app.clone(), settings::update(app, vm, req)).await
}

async fn vm_ports(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<Vec<VmPort>> {
    let vm = app.store.resolve_vm(&vm).map_err(errors::store_ref)?;
    Ok(Json(ports::ports(&app, &vm).await?))
}

async fn vm_stats(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<VmStats> {
    let vm = app.store.resolve_vm(&vm).map_err(errors::store_ref)?;
    Ok(Json(stats::stats(&app, &vm).await?))
}

async fn ssh_target(State(app): State<AppState>, Path(vm): Path<String>) -> Reply<SshTarget> {
    let vm = app.store.resolve_vm(&vm).map_err(errors::store_ref)?;
    if vm.state != VmState::Running {
        return Err(
            ApiError::conflict(format!("VM {} is {}, not running", vm.name, vm.state))
                .with_hint(format!("start it with `banger vm start {}`", vm.name))
                .into(),
        );
    }
    let files = VmFiles::new(std::path::Path::new(&vm.dir));
    Ok(Json(SshTarget {
        name: vm.name.clone(),
        ip: vm.ip.clone(),
        user: "root".into(),
        key_path: app.paths.ssh_key().display().to_string(),
        known_hosts_path: files.known_hosts().display().to_string(),
        host_key_alias: create::host_key_alias(&vm),
    }))
}

async fn get_image(
    State(app): State<AppState>,
    Path(image): Path<String>,
) -> Reply<banger_api::Image> {
    Ok(Json(images::get(&app, &image)?))
}

async fn delete_image(
    State(app): State<AppState>,
    Path(image): Path<String>,
) -> Reply<banger_api::Image> {
    to_completion(
        &app.clone(),
        async move { images::delete(&app, &image).await },
    )
    .await
}

async fn register_image(
    State(app): State<AppState>,
    Path(image): Path<String>,
    Json(mut request): Json<banger_api::RegisterImageRequest>,
) -> Reply<banger_api::Image> {
    request.name = image;
    to_completion(&app.clone(), async move {
        images::register(&app, request).await
    })
    .await
}

async fn list_images(State(app): State<AppState>) -> Reply<Vec<banger_api::Image>> {
    Ok(Json(app.store.list_images().map_err(errors::store)?))
}

async fn build_image(
    State(app): State<AppState>,
    Json(request): Json<BuildImageRequest>,
) -> Response {
    stream_operation(&app.clone(), move |reporter| async move {
        images::build(&app, request, reporter).await
    })
}
