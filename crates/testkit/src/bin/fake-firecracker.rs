//! A stand-in for the `firecracker` binary, for machines that cannot run it.
//!
//! Accepts Firecracker's command line (`--api-sock PATH --id ID ...`), serves
//! its API on the socket, and validates **every** request against the real
//! spec. Anything the spec does not allow is answered 400 and appended to
//! `violations.txt` in the working directory, so a test can fail on it. It
//! also enforces the rules real Firecracker applies around boot (boot source
//! required, files must exist, no reconfiguration after start).
//!
//! Faults are injected through `fake-firecracker.json` in the working
//! directory: `{"fail": ["PUT /drives/overlay"], "crash": ["PUT /boot-source"],
//! "ignore_ctrl_alt_del": true}`. Every request is logged to `requests.jsonl`.
//!
//! vsock: as Firecracker does, the `uds_path` of `PUT /vsock` becomes a
//! listening Unix socket at start, speaking the hybrid handshake
//! (`CONNECT <port>\n` → `OK <host port>\n`). The fake has no guest, so a
//! connection to the agent's port is bridged to a real `banger-agent`
//! listening on the Unix socket named by `FAKE_FIRECRACKER_AGENT`; any other
//! port, or no agent, closes the connection (nothing listens in the guest).

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
    boot_source: Option<Value>,
    machine: Option<Value>,
    drives: HashMap<String, Value>,
    interfaces: HashMap<String, Value>,
    vsock: Option<Value>,
}

struct Fake {
    id: String,
    spec: Spec,
    faults: Faults,
    vm: Mutex<Vm>,
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

/// The host side of the guest's vsock (see the crate docs).
fn serve_vsock(listener: std::os::unix::net::UnixListener) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking vsock socket");
    let listener = tokio::net::UnixListener::from_std(listener).expect("vsock socket");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(vsock_connection(stream));
        }
    });
}

async fn vsock_connection(stream: tokio::net::UnixStream) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let port = line.trim().strip_prefix("CONNECT ").map(str::trim);
    let agent = std::env::var("FAKE_FIRECRACKER_AGENT").ok();
    let agent_port = banger_api::agent::AGENT_PORT.to_string();
    let (Some(true), Some(agent)) = (port.map(|p| p == agent_port), agent) else {
        return; // nothing listens on that port in the (absent) guest
    };
    let Ok(mut guest) = tokio::net::UnixStream::connect(agent).await else {
        return;
    };
    let mut stream = reader.into_inner();
    if stream.write_all(b"OK 1073741824\n").await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut stream, &mut guest).await;
    }
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
        if self.faults.crash.contains(&call) {
            eprintln!("fake-firecracker: crashing on {call} (injected)");
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
        match (method, path) {
            ("GET", "/") => reply(
                StatusCode::OK,
                Some(json!({
                    "app_name": "Firecracker",
                    "id": self.id,
                    "state": if vm.started { "Running" } else { "Not started" },
                    "vmm_version": "1.16.1",
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
                    for key in ["kernel_image_path", "initrd_path"] {
                        if let Some(p) = boot[key].as_str() {
                            if !Path::new(p).exists() {
                                return fault(format!("Boot source error: cannot open {p}"));
                            }
                        }
                    }
                    for drive in vm.drives.values() {
                        if let Some(p) = drive["path_on_host"].as_str() {
                            if !Path::new(p).exists() {
                                return fault(format!("Drive error: cannot open {p}"));
                            }
                        }
                    }
                    if let Some(uds) = vm.vsock.as_ref().and_then(|v| v["uds_path"].as_str()) {
                        match std::os::unix::net::UnixListener::bind(uds) {
                            Ok(listener) => serve_vsock(listener),
                            Err(e) => return fault(format!("Vsock error: cannot bind {uds}: {e}")),
                        }
                    }
                    vm.started = true;
                    println!(
                        "fake-firecracker: guest booted ({} drives, {} interfaces)",
                        vm.drives.len(),
                        vm.interfaces.len()
                    );
                    no_content()
                }
                Some("SendCtrlAltDel") => {
                    if !vm.started {
                        return fault("The microVM is not running.");
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
            ("PUT", _) if vm.started => fault(after_start),
            ("PUT", "/boot-source") => {
                vm.boot_source = Some(body);
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
                vm.drives.insert(id.to_string(), body);
                no_content()
            }
            ("PUT", "/vsock") => {
                if body["guest_cid"].as_u64().unwrap_or(0) < 3 {
                    return fault("Vsock error: the guest CID must be at least 3");
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
