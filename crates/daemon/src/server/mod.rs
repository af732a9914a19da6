//! The HTTP API on the daemon's Unix socket: routes, handlers, and
//! ([`edge`]) the one place internal errors become API errors.

mod daemon;
mod edge;
mod images;
mod stream;
mod vms;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use banger_api::{ApiError, API_PREFIX};

use crate::app::App;
use edge::Failure;

type AppState = Arc<App>;

pub fn router(app: AppState) -> Router {
    let api = Router::new()
        .route("/daemon", get(daemon::status))
        .route("/daemon/shutdown", post(daemon::shutdown))
        .route("/doctor", get(daemon::doctor))
        .route("/runtime", get(daemon::runtime).post(daemon::fetch_runtime))
        .route("/vms", get(vms::list).post(vms::create))
        .route(
            "/vms/{vm}",
            get(vms::get).delete(vms::delete).patch(vms::update),
        )
        .route("/vms/{vm}/start", post(vms::start))
        .route("/vms/{vm}/stop", post(vms::stop))
        .route("/vms/{vm}/restart", post(vms::restart))
        .route("/vms/{vm}/suspend", post(vms::suspend))
        .route("/vms/{vm}/clone", post(vms::clone))
        .route("/vms/{vm}/resume", post(vms::resume))
        .route("/vms/{vm}/kill", post(vms::kill))
        .route("/vms/{vm}/stats", get(vms::stats))
        .route("/vms/{vm}/vmm", get(vms::vmm))
        .route("/vms/{vm}/ports", get(vms::ports))
        .route("/vms/{vm}/ssh", get(vms::ssh_target))
        .route("/vms/{vm}/sync", post(vms::sync))
        .route(
            "/vms/{vm}/forwards",
            get(vms::forwards).post(vms::add_forward),
        )
        .route(
            "/vms/{vm}/forwards/{proto}/{port}",
            axum::routing::delete(vms::remove_forward),
        )
        .route("/ssh-config", get(vms::ssh_config))
        .route("/prune", post(vms::prune))
        .route("/images", get(images::list).post(images::build))
        // PUT registers (or updates in place) an image made elsewhere.
        .route(
            "/images/{image}",
            get(images::get)
                .delete(images::delete)
                .put(images::register),
        )
        .route("/images/{image}/warm", post(images::warm));
    Router::new()
        .nest(API_PREFIX, api)
        .fallback(not_found)
        .with_state(app)
}

async fn not_found() -> Failure {
    Failure(
        ApiError::not_found("no such API route")
            .with_hint("client and daemon versions may differ; restart the daemon"),
    )
}
