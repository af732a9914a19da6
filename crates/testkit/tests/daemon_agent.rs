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
                axum::serve(listener, banger_agent::router()).await.unwrap();
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
