//! A stand-in for the `firecracker` binary, for what the real one cannot
//! show on a machine: a guest that becomes ready, and injected API faults.
//!
//! Accepts Firecracker's command line (`--api-sock PATH --id ID ...`), serves
//! its API on the socket, and validates **every** request against the real
//! spec. Anything the spec does not allow is answered 400 and appended to
//! `violations.txt` in the working directory, so a test can fail on it. It
//! answers as the real v1.16.1 does (checked side by side in
//! `tests/firecracker_real.rs`): boot-source and drive files are opened at
//! their PUT, the vsock socket is bound at `PUT /vsock`, an image that is
//! not ELF is refused at InstanceStart, FlushMetrics before start is
//! refused, no reconfiguration after start.
//!
//! Faults are injected through `fake-firecracker.json` in the working
//! directory: `{"fail": ["PUT /drives/overlay"], "crash": ["PUT /boot-source"],
//! "ignore_ctrl_alt_del": true}`. Every request is logged to `requests.jsonl`.

mod outputs;
mod snapshot;
mod vsock;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use banger_testkit::spec::Spec;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Default, Deserialize)]
struct Faults {
    #[serde(default)]
    fail: Vec<String>,
    #[serde(default)]
    crash: Vec<String>,
    #[serde(default)]
    ignore_ctrl_alt_del: bool,
}

#[derive(Default)]
struct Vm {
    started: bool,
    paused: bool,
    /// Anything but the logger and metrics configured: a snapshot can no
    /// longer be loaded into this process.
    configured: bool,
    boot_source: Option<Value>,
    machine: Option<Value>,
    drives: HashMap<String, Value>,
    interfaces: HashMap<String, Value>,
    vsock: Option<Value>,
    /// Bound at `PUT /vsock`, served from InstanceStart.
    vsock_listener: Option<std::os::unix::net::UnixListener>,
    serial: Option<String>,
}

struct Fake {
    id: String,
    spec: Spec,
    faults: Faults,
    vm: Mutex<Vm>,
    outputs: outputs::Outputs,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if args.iter().any(|a| a == "--version") {
        println!("Firecracker v1.16.1 (fake)");
        return;
    }
    let Some(socket) = value_of("--api-sock") else {
        eprintln!("fake-firecracker: --api-sock is required");
        std::process::exit(2);
    };
    let faults = std::fs::read_to_string("fake-firecracker.json")
        .ok()
        .map(|t| serde_json::from_str(&t).expect("fake-firecracker.json is valid"))
        .unwrap_or_default();
    let fake = Arc::new(Fake {
        id: value_of("--id").unwrap_or_else(|| "anonymous-instance".into()),
        spec: Spec::firecracker(),
        faults,
        vm: Mutex::new(Vm::default()),
        outputs: outputs::Outputs::new(&value_of("--id").unwrap_or_default()),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(serve(fake, PathBuf::from(socket)));
}

async fn serve(fake: Arc<Fake>, socket: PathBuf) {
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind the API socket");
    println!(
        "fake-firecracker {} listening on {}",
        fake.id,
        socket.display()
    );
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let fake = fake.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let fake = fake.clone();
                async move { Ok::<_, hyper::Error>(fake.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Whether `path` starts like an ELF file (what Firecracker's loader reads first).
fn is_elf(path: &str) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"\x7fELF"
}

fn reply(status: StatusCode, body: Option<Value>) -> Response<Full<Bytes>> {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("valid response")
}

fn fault(message: impl Into<String>) -> Response<Full<Bytes>> {
    reply(
        StatusCode::BAD_REQUEST,
        Some(json!({ "fault_message": message.into() })),
    )
}

fn append(file: &str, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("open record file");
    writeln!(f, "{line}").expect("write record file");
}

impl Fake {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return fault(format!("cannot read body: {e}")),
        };
        let call = format!("{method} {path}");
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        append(
            "requests.jsonl",
            &json!({"method": method, "path": path, "body": parsed}).to_string(),
        );

        if let Err(violation) = self.spec.validate(&method, &path, &body) {
            append("violations.txt", &violation);
            eprintln!("fake-firecracker: spec violation: {violation}");
            return fault(format!("spec violation: {violation}"));
        }
        self.outputs.log(
            "INFO",
            &format!("The API server received a {method} request on {path:?}."),
        );
        if self.faults.crash.contains(&call) {
            eprintln!("fake-firecracker: crashing on {call} (injected)");
            self.outputs.log(
                "ERROR",
                "Firecracker exiting with error. exit_code=1 (injected crash)",
            );
            std::process::exit(1);
        }
        if self.faults.fail.contains(&call) {
            return fault(format!("injected failure of {call}"));
        }
        self.apply(&method, &path, parsed)
    }

    /// The semantics real Firecracker enforces, for what banger uses.
    fn apply(&self, method: &str, path: &str, body: Value) -> Response<Full<Bytes>> {
        let mut vm = self.vm.lock().expect("state lock");
        let no_content = || reply(StatusCode::NO_CONTENT, None);
        let after_start = "The requested operation is not supported after starting the microVM.";
        let before_start = "The requested operation is not supported before starting the microVM.";
        let boot_resource = !matches!(
            path,
            "/logger" | "/metrics" | "/actions" | "/snapshot/load" | "/snapshot/create"
        );
        if method == "PUT" && boot_resource && !vm.started {
            vm.configured = true;
        }
        match (method, path) {
            ("GET", "/") => reply(
                StatusCode::OK,
                Some(json!({
                    "app_name": "Firecracker",
                    "id": self.id,
                    "state": match (vm.started, vm.paused) {
                        (false, _) => "Not started",
                        (true, false) => "Running",
                        (true, true) => "Paused",
                    },
                    "vmm_version": "1.16.1",
                })),
            ),
            ("GET", "/vm/config") => reply(
                StatusCode::OK,
                Some(json!({
                    "boot-source": vm.boot_source,
                    "drives": vm.drives.values().collect::<Vec<_>>(),
                    "machine-config": vm.machine.clone().unwrap_or_else(
                        || json!({"vcpu_count": 1, "mem_size_mib": 128, "smt": false})
                    ),
                    "network-interfaces": vm.interfaces.values().collect::<Vec<_>>(),
                    "vsock": vm.vsock,
                })),
            ),
            ("PUT", "/actions") => match body["action_type"].as_str() {
                Some("InstanceStart") => {
                    if vm.started {
                        return fault("The microVM is already running.");
                    }
                    let Some(boot) = &vm.boot_source else {
                        return fault("Cannot start microvm without kernel configuration.");
                    };
                    let kernel = boot["kernel_image_path"].as_str().unwrap_or_default();
                    if !is_elf(kernel) {
                        return fault("Start microvm error: System configuration error: Cannot load kernel due to invalid memory configuration or invalid kernel image: Kernel Loader: failed to load ELF kernel image: Kernel Loader: Unable to read elf header");
                    }
                    if let Some(listener) = vm.vsock_listener.take() {
                        vsock::serve(listener);
                    }
                    vm.started = true;
                    outputs::Outputs::console(
                        vm.serial.as_deref(),
                        &format!(
                            "fake-firecracker: guest booted ({} drives, {} interfaces)",
                            vm.drives.len(),
                            vm.interfaces.len()
                        ),
                    );
                    self.outputs.flush_metrics();
                    no_content()
                }
                Some("FlushMetrics") => {
                    if !vm.started {
                        return fault(before_start);
                    }
                    self.outputs.flush_metrics();
                    no_content()
                }
                Some("SendCtrlAltDel") => {
                    if !vm.started {
                        return fault(before_start);
                    }
                    if !self.faults.ignore_ctrl_alt_del {
                        // The guest reboots (reboot=k) and Firecracker exits.
                        std::thread::spawn(|| {
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            println!("fake-firecracker: guest rebooted; exiting");
                            std::process::exit(0);
                        });
                    }
                    no_content()
                }
                _ => no_content(),
            },
            ("PATCH", "/vm") => {
                if !vm.started {
                    return fault(before_start);
                }
                vm.paused = body["state"].as_str() == Some("Paused");
                no_content()
            }
            ("PUT", "/snapshot/create") => {
                if !vm.started {
                    return fault(before_start);
                }
                if !vm.paused {
                    return fault("Create snapshot error: Cannot create a snapshot while the microVM is running: pause it first.");
                }
                match snapshot::create(&vm_state(&vm), &body) {
                    Ok(()) => no_content(),
                    Err(e) => fault(e),
                }
            }
            ("PUT", "/snapshot/load") => {
                if vm.started || vm.configured {
                    return fault("Loading a microVM snapshot not allowed after configuring boot-specific resources.");
                }
                let state = match snapshot::load(&body) {
                    Ok(state) => state,
                    Err(e) => return fault(e),
                };
                if let Err(e) = self.restore(&mut vm, state) {
                    return fault(e);
                }
                vm.started = true;
                vm.paused = !body["resume_vm"].as_bool().unwrap_or(false);
                no_content()
            }
            ("PUT", _) if vm.started => fault(after_start),
            ("PUT", "/boot-source") => {
                let opens = |key: &str| body[key].as_str().is_none_or(|p| Path::new(p).exists());
                if !opens("kernel_image_path") {
                    return fault("Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)");
                }
                if !opens("initrd_path") {
                    return fault("Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. No such file or directory (os error 2)");
                }
                vm.boot_source = Some(body);
                no_content()
            }
            ("PUT", "/logger") => {
                match self
                    .outputs
                    .set_logger(body["log_path"].as_str().unwrap_or_default())
                {
                    Ok(()) => no_content(),
                    Err(e) => fault(e),
                }
            }
            ("PUT", "/metrics") => {
                match self
                    .outputs
                    .set_metrics(body["metrics_path"].as_str().unwrap_or_default())
                {
                    Ok(()) => no_content(),
                    Err(e) => fault(e),
                }
            }
            ("PUT", "/serial") => {
                vm.serial = body["serial_out_path"].as_str().map(String::from);
                no_content()
            }
            ("PUT", "/machine-config") => {
                vm.machine = Some(body);
                no_content()
            }
            ("PUT", p) if p.starts_with("/drives/") => {
                let id = p.trim_start_matches("/drives/");
                if body["drive_id"].as_str() != Some(id) {
                    return fault("The id from the path does not match the id from the body!");
                }
                if let Some(p) = body["path_on_host"].as_str() {
                    if !Path::new(p).exists() {
                        return fault(format!("Drive config error: Unable to create the virtio block device: Virtio backend error: Error manipulating the backing file: No such file or directory (os error 2) {p}"));
                    }
                }
                vm.drives.insert(id.to_string(), body);
                no_content()
            }
            // Firecracker updates a drive only once the guest runs (the
            // ids are checked first), and only one it was given.
            ("PATCH", p) if p.starts_with("/drives/") => {
                let id = p.trim_start_matches("/drives/");
                if body["drive_id"].as_str() != Some(id) {
                    return fault("The id from the path does not match the id from the body!");
                }
                if !vm.started {
                    return fault(
                        "The requested operation is not supported before starting the microVM.",
                    );
                }
                let Some(drive) = vm.drives.get_mut(id) else {
                    return fault(format!(
                        "Drive config error: The drive with id {id} does not exist"
                    ));
                };
                if let Some(p) = body["path_on_host"].as_str() {
                    if !Path::new(p).exists() {
                        return fault(format!("Drive config error: Unable to patch the block device: No such file or directory (os error 2) {p}"));
                    }
                    drive["path_on_host"] = p.into();
                }
                no_content()
            }
            ("PUT", "/vsock") => {
                if body["guest_cid"].as_u64().unwrap_or(0) < 3 {
                    return fault("Vsock error: the guest CID must be at least 3");
                }
                match vsock::bind(body["uds_path"].as_str().unwrap_or_default()) {
                    Ok(listener) => vm.vsock_listener = Some(listener),
                    Err(e) => return fault(e),
                }
                vm.vsock = Some(body);
                no_content()
            }
            ("PUT", p) if p.starts_with("/network-interfaces/") => {
                let id = p.trim_start_matches("/network-interfaces/");
                if body["iface_id"].as_str() != Some(id) {
                    return fault("The id from the path does not match the id from the body!");
                }
                vm.interfaces.insert(id.to_string(), body);
                no_content()
            }
            _ => no_content(),
        }
    }
}

/// What a snapshot of the fake holds: the configuration it booted with.
fn vm_state(vm: &Vm) -> Value {
    json!({
        "boot_source": vm.boot_source,
        "machine": vm.machine,
        "drives": vm.drives,
        "interfaces": vm.interfaces,
        "vsock": vm.vsock,
        "serial": vm.serial,
    })
}

impl Fake {
    /// Takes a loaded snapshot's configuration, with the load's overrides:
    /// the TAP of an interface and the vsock socket, bound now.
    fn restore(&self, vm: &mut Vm, state: snapshot::Loaded) -> Result<(), String> {
        let saved = state.vm;
        vm.boot_source = saved.get("boot_source").cloned().filter(|v| !v.is_null());
        vm.machine = saved.get("machine").cloned().filter(|v| !v.is_null());
        vm.serial = saved["serial"].as_str().map(String::from);
        vm.drives = serde_json::from_value(saved["drives"].clone()).unwrap_or_default();
        vm.interfaces = serde_json::from_value(saved["interfaces"].clone()).unwrap_or_default();
        for (iface, tap) in state.network_overrides {
            let Some(entry) = vm.interfaces.get_mut(&iface) else {
                return Err(format!("Load snapshot error: Failed to restore from snapshot: Invalid network override: no interface {iface}"));
            };
            entry["host_dev_name"] = Value::String(tap);
        }
        let mut vsock = saved.get("vsock").cloned().filter(|v| !v.is_null());
        if let Some(device) = vsock.as_mut() {
            if let Some(path) = state.vsock_override {
                device["uds_path"] = Value::String(path);
            }
            let listener = vsock::bind(device["uds_path"].as_str().unwrap_or_default())?;
            vsock::serve(listener);
        }
        vm.vsock = vsock;
        outputs::Outputs::console(
            vm.serial.as_deref(),
            "fake-firecracker: guest restored from a snapshot",
        );
        self.outputs.flush_metrics();
        Ok(())
    }
}
