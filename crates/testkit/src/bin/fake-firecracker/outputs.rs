//! What Firecracker writes besides its API answers, as v1.16.1 does it:
//! the logger (`PUT /logger`: opened at the request, which fails when the
//! file cannot be created), the metrics (`PUT /metrics`: created at the
//! request; one JSON line per flush holding the counts since the last one),
//! and the guest's serial console (`PUT /serial`: opened at start). None
//! is opened for appending: each is written from its start.

use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use serde_json::json;

#[derive(Default)]
pub struct Outputs {
    logger: Mutex<Option<File>>,
    metrics: Mutex<Option<File>>,
    id: String,
}

fn open(path: &str) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl Outputs {
    pub fn new(id: &str) -> Outputs {
        Outputs {
            id: id.to_string(),
            ..Outputs::default()
        }
    }

    pub fn set_logger(&self, path: &str) -> Result<(), String> {
        let file =
            open(path).map_err(|e| format!("Logger error: Failed to open target file: {e}"))?;
        *self.logger.lock().expect("logger lock") = Some(file);
        Ok(())
    }

    pub fn set_metrics(&self, path: &str) -> Result<(), String> {
        let file =
            open(path).map_err(|e| format!("Metrics error: Failed to open target file: {e}"))?;
        *self.metrics.lock().expect("metrics lock") = Some(file);
        Ok(())
    }

    /// One logger line, shaped as Firecracker's with `show_level`.
    pub fn log(&self, level: &str, message: &str) {
        if let Some(file) = self.logger.lock().expect("logger lock").as_mut() {
            let _ = writeln!(file, "{} [{}:fc_api:{level}] {message}", stamp(), self.id);
        }
    }

    /// One metrics flush. The fake's guest does one console write and
    /// one vCPU exit per flush, so totals grow as flushes add up.
    pub fn flush_metrics(&self) {
        if let Some(file) = self.metrics.lock().expect("metrics lock").as_mut() {
            let line = json!({
                "utc_timestamp_ms": 0,
                "vcpu": {"exit_io_in": 0, "exit_io_out": 1, "exit_mmio_read": 0, "exit_mmio_write": 0, "failures": 0},
                "block": {"read_bytes": 4096, "write_bytes": 0},
                "net": {"rx_bytes_count": 0, "tx_bytes_count": 0},
                "uart": {"write_count": 1},
            });
            let _ = writeln!(file, "{line}");
        }
    }

    /// The guest console at start: the serial file, else standard output.
    pub fn console(path: Option<&str>, text: &str) {
        match path.map(open) {
            Some(Ok(mut file)) => {
                let _ = writeln!(file, "{text}");
            }
            Some(Err(e)) => eprintln!("fake-firecracker: cannot open the serial output: {e}"),
            None => println!("{text}"),
        }
    }
}

fn stamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}
