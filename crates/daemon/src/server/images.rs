//! `/v1/images`: list, build, register, show and delete images.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use banger_api::{BuildImageRequest, Image, RegisterImageRequest};

use super::stream::{stream, to_completion, Reply};
use super::AppState;

pub async fn list(State(app): State<AppState>) -> Reply<Vec<Image>> {
    Ok(Json(app.images.list()?))
}

pub async fn get(State(app): State<AppState>, Path(image): Path<String>) -> Reply<Image> {
    Ok(Json(app.images.get(&image)?))
}

pub async fn delete(State(app): State<AppState>, Path(image): Path<String>) -> Reply<Image> {
    let images = app.images.clone();
    to_completion(&app.inflight, async move { images.delete(&image).await }).await
}

pub async fn register(
    State(app): State<AppState>,
    Path(image): Path<String>,
    Json(mut request): Json<RegisterImageRequest>,
) -> Reply<Image> {
    request.name = image;
    let (images, vms, inflight) = (app.images.clone(), app.vms.clone(), app.inflight.clone());
    to_completion(&app.inflight, async move {
        let image = images.register(request).await?;
        vms.warm_in_background(&image, inflight, &crate::progress::Reporter::silent());
        Ok::<_, crate::images::ImageError>(image)
    })
    .await
}

/// `POST /v1/images/{image}/warm`: (re)makes the image's warm template.
pub async fn warm(State(app): State<AppState>, Path(image): Path<String>) -> Response {
    let vms = app.vms.clone();
    stream(&app.inflight, move |reporter| async move {
        vms.warm_image(image, reporter).await
    })
}

pub async fn build(
    State(app): State<AppState>,
    Json(request): Json<BuildImageRequest>,
) -> Response {
    let (images, vms, inflight) = (app.images.clone(), app.vms.clone(), app.inflight.clone());
    stream(&app.inflight, move |reporter| async move {
        let image = images.build(request, reporter.clone()).await?;
        vms.warm_in_background(&image, inflight, &reporter);
        Ok::<_, crate::images::ImageError>(image)
    })
}
