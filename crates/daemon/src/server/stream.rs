//! Running operations for HTTP handlers: each in its own task (a client
//! that disconnects does not cancel it half-way), long ones streaming
//! their progress as JSON lines, and every failure turned into an API
//! error on the way out.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use axum::Json;
use banger_api::{ApiError, Event};
use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, RwLock};

use crate::progress::Reporter;

pub use super::edge::Failure;

pub type Reply<T> = Result<Json<T>, Failure>;

/// Streams a long operation's progress, then its result, as JSON lines.
pub fn stream<T, E, F, Fut>(inflight: &Arc<RwLock<()>>, operation: F) -> Response
where
    T: Serialize + Send + 'static,
    Failure: From<E>,
    E: Send + 'static,
    F: FnOnce(Reporter) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    let (progress_tx, progress_rx) = mpsc::unbounded_channel();
    let (done_tx, done_rx) = oneshot::channel();
    let future = operation(Reporter::new(progress_tx));
    let inflight = inflight.clone();
    tokio::spawn(async move {
        // Held while the operation runs: daemon shutdown waits for it.
        let _running = inflight.read_owned().await;
        let _ = done_tx.send(future.await.map_err(|e| Failure::from(e).0));
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
                        Err(_) => Event::Failed { error: ApiError::internal("the operation failed unexpectedly; see bangerd.log") },
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
pub async fn to_completion<T, E>(
    inflight: &Arc<RwLock<()>>,
    operation: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Reply<T>
where
    T: Send + 'static,
    Failure: From<E>,
    E: Send + 'static,
{
    let inflight = inflight.clone();
    let result = tokio::spawn(async move {
        let _running = inflight.read_owned().await;
        operation.await
    })
    .await?;
    Ok(Json(result?))
}
