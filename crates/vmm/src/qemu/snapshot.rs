//! Suspend and resume for QEMU: the guest is stopped and migrated into a
//! file (`migrate "exec:dd of=FILE conv=fsync"`; zero pages are skipped, so
//! an idle 1 GiB guest writes ~150 MB), and a new QEMU with the same
//! devices, started paused (`-S`), loads it with `-incoming "exec:cat FILE"`.
//!
//! QEMU refuses to migrate a vhost-user vsock device ("non-migratable
//! device"), so a guest with the vsock agent channel (older images) cannot
//! be saved: the refusal comes from QEMU itself, before anything is
//! written, and the guest keeps running. The serial channel migrates. Which devices the guest had is kept beside the
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
    /// The agent's virtio-serial port (saved before it existed: none).
    #[serde(default)]
    pub serial: bool,
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

/// How long a save may take, and how many status polls in a row may fail
/// (QMP answering slowly under load) before it is abandoned.
const SAVE_DEADLINE: Duration = Duration::from_secs(600);
const POLL_FAILURES: u32 = 20;

/// Ends a migration still under way and lets the guest run again: a
/// guest left in `postmigrate` would look running and do nothing.
pub async fn abandon(qmp_socket: &Path) {
    settle(qmp_socket).await;
    let _ = qmp::execute(qmp_socket, "cont").await;
}

/// Cancels a migration under way and waits until it has stopped (a
/// `cont` before that would be undone when it finishes).
pub async fn settle(qmp_socket: &Path) {
    let _ = qmp::execute(qmp_socket, "migrate_cancel").await;
    for _ in 0..100 {
        let done = qmp::query(qmp_socket, &["query-migrate"])
            .await
            .ok()
            .and_then(|a| a.first().cloned())
            .is_none_or(|s| {
                !matches!(
                    s["status"].as_str(),
                    Some("active" | "setup" | "cancelling")
                )
            });
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn save(qmp_socket: &Path, into: &Path, devices: Devices) -> Result<()> {
    qmp::execute(qmp_socket, "stop").await.map_err(failed)?;
    // dd syncs the stream to disk before it exits, and QEMU waits for it
    // before it calls the migration completed.
    let uri = format!(
        "exec:dd of={} bs=1M conv=fsync status=none",
        shell_quote(&into.join(MIGRATION))
    );
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
    let deadline = tokio::time::Instant::now() + SAVE_DEADLINE;
    let mut failures = 0;
    loop {
        if tokio::time::Instant::now() >= deadline {
            abandon(qmp_socket).await;
            return Err(failed(format!(
                "the state was not written within {} s",
                SAVE_DEADLINE.as_secs()
            )));
        }
        let status = match qmp::query(qmp_socket, &["query-migrate"]).await {
            Ok(answers) => {
                failures = 0;
                answers.first().cloned().unwrap_or_default()
            }
            Err(e) => {
                failures += 1;
                if failures >= POLL_FAILURES {
                    abandon(qmp_socket).await;
                    return Err(failed(e));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
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
                // Started with -S: the guest stays paused once loaded.
                Some("paused" | "prelaunch") => return Ok(()),
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
