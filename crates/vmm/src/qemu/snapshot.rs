//! Suspend and resume for QEMU: the guest is stopped and migrated into a
//! file (`migrate "exec:cat > FILE"`; zero pages are skipped, so an idle
//! 1 GiB guest writes ~150 MB), and a new QEMU with the same devices
//! continues it with `-incoming "exec:cat FILE"`.
//!
//! QEMU refuses to migrate a vhost-user vsock device ("non-migratable
//! device"), so a guest with banger's agent channel cannot be saved: the
//! refusal comes from QEMU itself, before anything is written, and the
//! guest keeps running. Which devices the guest had is kept beside the
//! state, because the restoring QEMU must have exactly those.

use std::path::Path;
use std::time::Duration;

use banger_api::VmmKind;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::qmp;
use crate::{Result, VmmError};

/// The migration stream of a saved guest.
pub const MIGRATION: &str = "migration";
/// The devices it was saved with.
const DEVICES: &str = "qemu-devices.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Devices {
    pub vsock: bool,
}

/// `'…'` for `sh -c`, which QEMU runs an `exec:` URI with.
pub fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

pub fn incoming_uri(from: &Path) -> String {
    format!("exec:cat {}", shell_quote(&from.join(MIGRATION)))
}

pub fn devices(from: &Path) -> Result<Devices> {
    let text = std::fs::read_to_string(from.join(DEVICES)).map_err(|e| VmmError::Restore {
        reason: format!("{}: {e}", from.join(DEVICES).display()),
        log: String::new(),
    })?;
    serde_json::from_str(&text).map_err(|e| VmmError::Restore {
        reason: format!("{}: {e}", from.join(DEVICES).display()),
        log: String::new(),
    })
}

fn failed(e: impl std::fmt::Display) -> VmmError {
    VmmError::Save {
        reason: e.to_string(),
    }
}

pub async fn save(qmp_socket: &Path, into: &Path, devices: Devices) -> Result<()> {
    qmp::execute(qmp_socket, "stop").await.map_err(failed)?;
    let uri = format!("exec:cat > {}", shell_quote(&into.join(MIGRATION)));
    if let Err(e) = qmp::call(qmp_socket, "migrate", json!({ "uri": uri })).await {
        let _ = qmp::execute(qmp_socket, "cont").await;
        let text = e.to_string();
        if text.contains("non-migratable") || text.contains("blocked") {
            return Err(VmmError::CannotSave {
                vmm: VmmKind::Qemu,
                reason: text,
            });
        }
        return Err(failed(text));
    }
    loop {
        let status = qmp::query(qmp_socket, &["query-migrate"])
            .await
            .map_err(failed)?;
        let status = status.first().cloned().unwrap_or_default();
        match status["status"].as_str().unwrap_or("none") {
            "completed" => break,
            "failed" | "cancelled" => {
                let _ = qmp::execute(qmp_socket, "cont").await;
                return Err(failed(format!(
                    "migration {}: {}",
                    status["status"].as_str().unwrap_or_default(),
                    status["error-desc"].as_str().unwrap_or("no reason given")
                )));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let written = serde_json::to_vec(&devices).expect("devices serialise");
    std::fs::write(into.join(DEVICES), written).map_err(failed)
}

/// Waits until the restoring QEMU has read the whole stream; the guest is
/// then paused (QEMU carries the saved guest's stopped state over).
pub async fn wait_loaded(
    qmp_socket: &Path,
    process: banger_host::process::ProcessId,
    log: &Path,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        if !process.is_alive() {
            return Err(VmmError::Restore {
                reason: "QEMU exited while reading the saved state".into(),
                log: banger_api::files::tail_summary(log, 5),
            });
        }
        if let Ok(answers) = qmp::query(qmp_socket, &["query-status"]).await {
            match answers.first().and_then(|a| a["status"].as_str()) {
                Some("paused" | "running") => return Ok(()),
                Some("inmigrate") | None => {}
                Some(other) => {
                    return Err(VmmError::Restore {
                        reason: format!("the restored guest is {other}, not paused"),
                        log: banger_api::files::tail_summary(log, 5),
                    })
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(VmmError::Restore {
                reason: "the saved state was not read within 300 s".into(),
                log: banger_api::files::tail_summary(log, 5),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quote_in_a_path_stays_in_the_path() {
        assert_eq!(shell_quote(Path::new("/st ate/it's")), r"'/st ate/it'\''s'");
    }
}
