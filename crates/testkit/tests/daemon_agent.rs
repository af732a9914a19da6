//! Readiness and guest figures through the guest agent, with the Firecracker
//! driver: the fake Firecracker serves the VM's hybrid vsock socket and
//! bridges the agent's port to a real agent (the `banger-agent` router)
//! running in this test process. The guest probe never answers here, so a
//! VM that becomes ready did so through its agent.
//!
//! A test binary of its own: `FAKE_FIRECRACKER_AGENT` is process-wide (the
//! fake's other input, `fake-firecracker.json`, lives in a VM directory
//! that exists only once the daemon made it). It is set once, before the
//! first fake is spawned; nothing else in this binary reads it.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use banger_api::{CreateVmRequest, VmState};
use banger_client::agent::Unusable;
use banger_daemon::progress::Reporter;
use banger_daemon::vms::VmError;
use common::*;

/// The identities the daemon asked guests to take, in order, each with the
/// TAPs that were off the bridge at that moment.
type Taken = (
    banger_api::agent::Identity,
    std::collections::HashSet<String>,
);
static IDENTITIES: std::sync::Mutex<Vec<Taken>> = std::sync::Mutex::new(Vec::new());
/// The network of the test that records identities.
static NET: std::sync::Mutex<Option<std::sync::Arc<banger_testkit::doubles::FakeNetwork>>> =
    std::sync::Mutex::new(None);

/// The real agent, but for `/v1/identity`: on a host the real one refuses
/// (rightly: it would change this machine), so a double records the
/// request and answers as a guest's agent does.
fn agent_router() -> axum::Router {
    async fn identity(body: axum::body::Bytes) -> axum::Json<banger_api::agent::IdentityDone> {
        let identity = serde_json::from_slice(&body).expect("an identity");
        let detached = NET
            .lock()
            .unwrap()
            .as_ref()
            .map(|net| net.detached.lock().unwrap().clone())
            .unwrap_or_default();
        IDENTITIES.lock().unwrap().push((identity, detached));
        axum::Json(banger_api::agent::IdentityDone { steps: Vec::new() })
    }
    axum::Router::new()
        .route("/v1/identity", axum::routing::post(identity))
        .fallback_service(banger_agent::router())
}

/// A real agent on a Unix socket, for the whole test binary.
fn agent_socket() -> &'static PathBuf {
    static SOCKET: OnceLock<PathBuf> = OnceLock::new();
    SOCKET.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let socket = dir.join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                axum::serve(listener, agent_router()).await.unwrap();
            });
        });
        // Set before any fake Firecracker is spawned, which inherits it.
        std::env::set_var("FAKE_FIRECRACKER_AGENT", &socket);
        socket
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_with_the_agent_is_ready_when_the_agent_answers() {
    agent_socket();
    // The SSH probe would take an hour: only the agent can make it ready.
    let d = daemon(Duration::from_secs(3600));
    let app = d.app.clone();
    let mut image = app.store().get_image("default").unwrap().unwrap();
    image.agent = true;
    app.store().put_image(&image).unwrap();

    let started = Instant::now();
    let vm = app
        .vms()
        .clone()
        .create(
            CreateVmRequest {
                name: Some("agented".into()),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap();
    assert_eq!(vm.state, VmState::Running);
    assert!(started.elapsed() < Duration::from_secs(20));
    let dir = Path::new(&vm.dir);
    assert!(dir.join("vm.vsock").exists(), "Firecracker's vsock socket");
    assert_spec_clean(dir);

    // The guest's own figures come through the same socket.
    let figures = app.vms().stats(&vm.name).await.unwrap();
    let guest = figures.guest.expect("guest figures");
    assert!(guest.memory_total_bytes > 0);
    assert_eq!(figures.guest_error, None);

    // Stop and start: ready through the agent again.
    app.vms()
        .clone()
        .stop("agented".into(), false)
        .await
        .unwrap();
    let stopped = app.vms().stats("agented").await.unwrap();
    assert!(stopped.guest.is_none() && stopped.guest_error.is_none());
    let vm = app
        .vms()
        .clone()
        .start("agented".into(), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(vm.state, VmState::Running);
    app.vms()
        .clone()
        .delete("agented".into(), true)
        .await
        .unwrap();
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_the_agent_is_ready_by_ssh_and_says_so() {
    agent_socket();
    let d = daemon(Duration::from_millis(200));
    let app = d.app.clone();
    let started = Instant::now();
    let vm = app
        .vms()
        .clone()
        .create(
            CreateVmRequest {
                name: Some("plain".into()),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap();
    assert_eq!(vm.state, VmState::Running);
    // The VMM's vsock exists (and would even answer), but the image says
    // there is no agent: readiness came from the probe, with no agent grace.
    assert!(started.elapsed() < Duration::from_secs(10));
    // Guest features say why they are missing, and how to get them.
    let figures = app.vms().stats(&vm.name).await.unwrap();
    assert!(figures.guest.is_none());
    let why = figures.guest_error.unwrap();
    assert!(
        why.contains("made without one") && why.contains("banger image build --name default"),
        "{why}"
    );
    let err = app.vms().ports(&vm.name).await.unwrap_err();
    assert!(
        matches!(err, VmError::Agent(Unusable::NotInImage { ref image, .. }) if image == "default"),
        "{err:?}"
    );
    app.vms()
        .clone()
        .delete("plain".into(), true)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firecracker_clones_a_running_vm_and_creates_warm_off_the_network_until_it_has_its_identity(
) {
    agent_socket();
    let d = daemon(Duration::from_millis(200));
    *NET.lock().unwrap() = Some(d.net.clone());
    let app = d.app.clone();
    let mut image = app.store().get_image("default").unwrap().unwrap();
    image.agent = true;
    app.store().put_image(&image).unwrap();
    let vms = app.vms().clone();
    let source = create(&app, "source").await;

    // A running clone: the source paused for a snapshot and running again,
    // the clone loaded from it on its own TAP, which is off the bridge
    // while the guest takes its identity.
    let ops_before = d.net.ops.lock().unwrap().len();
    let clone = vms
        .clone()
        .clone_vm("source".into(), Some("twin".into()), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(clone.state, VmState::Running);
    let status = vms.vmm_status("source").await.unwrap();
    assert_eq!(status.state, "Running", "the source runs again");
    let (identity, detached) = IDENTITIES.lock().unwrap().last().cloned().unwrap();
    assert!(
        detached.contains(&clone.tap),
        "off the bridge while it takes its identity"
    );
    assert_eq!(identity.hostname, "twin");
    assert_eq!(identity.network.from_mac, source.mac);
    assert_eq!(identity.network.from_address, source.ip);
    assert_eq!(
        (identity.network.mac, identity.network.address),
        (clone.mac, clone.ip)
    );
    let plugs: Vec<Option<String>> = d.net.ops.lock().unwrap()[ops_before..]
        .iter()
        .filter_map(|op| match op {
            banger_host::privileged::Op::PlugTap { tap, bridge, .. } if *tap == clone.tap => {
                Some(bridge.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(plugs, [None, Some("banger0".into())], "off, then on");
    assert!(!d.net.detached.lock().unwrap().contains(&clone.tap));
    let load = requests(&clone.dir)
        .into_iter()
        .find(|r| r["path"] == "/snapshot/load")
        .expect("the clone was loaded from a snapshot");
    assert_eq!(
        load["body"]["network_overrides"][0]["host_dev_name"],
        clone.tap.as_str()
    );

    // A warm create from the image's template, with a bigger /root: the
    // template's memory file mapped as it is (not copied), the disk grown
    // under the running guest, the guest told to grow its filesystem.
    vms.clone()
        .warm_image("default".into(), Reporter::silent())
        .await
        .unwrap();
    let template = banger_api::paths::Paths::under(d.root.path()).warm_template("default");
    let warm = vms
        .clone()
        .create(
            CreateVmRequest {
                name: Some("warmed".into()),
                disk_size: Some("12G".into()),
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap();
    assert!(warm.warm, "made from the template");
    let requests = requests(&warm.dir);
    let load = requests
        .iter()
        .find(|r| r["path"] == "/snapshot/load")
        .unwrap();
    assert_eq!(
        load["body"]["mem_backend"]["backend_path"],
        template.join("state/memory").display().to_string()
    );
    assert!(
        requests
            .iter()
            .any(|r| r["method"] == "PATCH" && r["path"] == "/drives/work"),
        "the work disk grown under the guest"
    );
    assert_eq!(
        std::fs::metadata(warm.files().work()).unwrap().len(),
        12 << 30
    );
    let (identity, detached) = IDENTITIES.lock().unwrap().last().cloned().unwrap();
    assert!(detached.contains(&warm.tap), "off the bridge meanwhile");
    assert!(
        !d.net.detached.lock().unwrap().contains(&warm.tap),
        "on it now"
    );
    assert_eq!(identity.hostname, "warmed");
    assert_eq!(identity.grow.len(), 1);
    assert_eq!(identity.grow[0].label, "banger-work");
    // The grown drive is named relative to the VM's directory, as at boot:
    // a clone of this VM restored from its snapshot opens its own copy.
    let patch = requests
        .iter()
        .find(|r| r["method"] == "PATCH" && r["path"] == "/drives/work")
        .unwrap();
    assert_eq!(patch["body"]["path_on_host"], "work.ext4");
    let again = vms
        .clone()
        .clone_vm("warmed".into(), Some("again".into()), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(again.state, VmState::Running);
    assert_eq!(again.disk_size_bytes, 12 << 30);
    for name in ["source", "twin", "warmed", "again"] {
        vms.clone().delete(name.into(), true).await.unwrap();
    }
}
