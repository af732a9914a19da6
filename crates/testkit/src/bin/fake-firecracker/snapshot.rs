//! Snapshots of the fake: `PUT /snapshot/create` writes the configuration
//! the fake booted with as the state file and a sparse memory file of the
//! guest's size (what the real one writes in full); `PUT /snapshot/load`
//! reads them back, refusing a missing or damaged state file and a missing
//! memory file as the real one does.

use serde_json::{json, Value};

const MAGIC: &str = "fake-firecracker snapshot v1";

pub fn create(vm: &Value, body: &Value) -> Result<(), String> {
    let state_path = body["snapshot_path"].as_str().unwrap_or_default();
    let mem_path = body["mem_file_path"].as_str().unwrap_or_default();
    let mib = vm["machine"]["mem_size_mib"].as_u64().unwrap_or(128);
    let state = json!({ "magic": MAGIC, "vm": vm });
    std::fs::write(state_path, state.to_string())
        .map_err(|e| format!("Create snapshot error: Cannot save the microVM state: {e}"))?;
    let memory = std::fs::File::create(mem_path)
        .and_then(|f| f.set_len(mib << 20).map(|()| f))
        .map_err(|e| format!("Create snapshot error: Cannot write memory file: {e}"))?;
    drop(memory);
    Ok(())
}

pub struct Loaded {
    pub vm: Value,
    pub network_overrides: Vec<(String, String)>,
    pub vsock_override: Option<String>,
}

pub fn load(body: &Value) -> Result<Loaded, String> {
    let state_path = body["snapshot_path"].as_str().unwrap_or_default();
    let text = std::fs::read_to_string(state_path).map_err(|e| {
        format!("Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Failed to open snapshot file: {e}")
    })?;
    let state: Value = serde_json::from_str(&text)
        .ok()
        .filter(|s: &Value| s["magic"] == MAGIC)
        .ok_or_else(|| "Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: Failed to load snapshot state from file: Snapshot file is corrupted".to_string())?;
    let mem_path = body["mem_backend"]["backend_path"]
        .as_str()
        .or_else(|| body["mem_file_path"].as_str())
        .unwrap_or_default();
    std::fs::File::open(mem_path).map_err(|e| {
        format!("Load snapshot error: Failed to restore from snapshot: Failed to load guest memory: Error creating guest memory from file: {e}")
    })?;
    let network_overrides = body["network_overrides"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|o| {
                    (
                        o["iface_id"].as_str().unwrap_or_default().to_string(),
                        o["host_dev_name"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Loaded {
        vm: state["vm"].clone(),
        network_overrides,
        vsock_override: body["vsock_override"]["uds_path"]
            .as_str()
            .map(String::from),
    })
}
