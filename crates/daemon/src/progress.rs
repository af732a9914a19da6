//! Progress reporting from an operation to the client that asked for it.

use banger_api::Progress;
use tokio::sync::mpsc::UnboundedSender;

/// Where an operation reports its stages. Reporting never fails: if the
/// client went away the operation still runs to completion (or rollback).
#[derive(Clone)]
pub struct Reporter {
    tx: Option<UnboundedSender<Progress>>,
}

impl Reporter {
    pub fn new(tx: UnboundedSender<Progress>) -> Self {
        Reporter { tx: Some(tx) }
    }

    /// A reporter nobody listens to.
    pub fn silent() -> Self {
        Reporter { tx: None }
    }

    pub fn say(&self, stage: &str, message: impl Into<String>, fraction: Option<f32>) {
        let progress = Progress {
            stage: stage.into(),
            message: message.into(),
            fraction,
        };
        tracing::debug!(stage = %progress.stage, message = %progress.message, "progress");
        if let Some(tx) = &self.tx {
            let _ = tx.send(progress);
        }
    }

    pub fn forward(&self, progress: Progress) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(progress);
        }
    }
}
