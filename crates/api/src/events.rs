//! Progress of long operations (create, start, image build).
//!
//! The daemon answers such requests with a stream of JSON lines
//! (`application/x-ndjson`): any number of [`Event::Progress`] lines, then
//! exactly one [`Event::Done`] or [`Event::Failed`].

use serde::{Deserialize, Serialize};

use crate::ApiError;

/// One step of a long operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Short stable name of the stage, e.g. `image.rootfs`, `vm.boot`.
    pub stage: String,
    /// What is happening, for humans.
    pub message: String,
    /// Fraction done of the whole operation, 0.0..=1.0, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<T> {
    Progress(Progress),
    Done { result: T },
    Failed { error: ApiError },
}
