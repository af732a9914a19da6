//! The daemon's HTTP API end to end in one process: the real router on a
//! Unix socket, the real client. Errors reach the client with their code
//! and hint (mapped at the server's edge), and doctor and the runtime
//! bundle are the daemon's view, not the client's.

mod common;

use std::sync::Arc;
use std::time::Duration;

use banger_api::{CheckStatus, ErrorCode};
use banger_client::{ClientError, DaemonClient};
use banger_daemon::config::Config;
use common::*;

/// Serves the daemon's API for `app` on a socket in its state; returns a client.
fn serve(app: Arc<banger_daemon::app::App>, root: &tempfile::TempDir) -> DaemonClient {
    let socket = root.path().join("api.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::UnixListener::from_std(listener).unwrap();
    tokio::spawn(async move {
        axum::serve(listener, banger_daemon::server::router(app))
            .await
            .unwrap();
    });
    DaemonClient::new(socket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_doctor_and_the_runtime_bundle_come_from_the_daemon() {
    let d = daemon(Duration::from_millis(20));
    let runtime_dir = d.root.path().join("no-bundle-here");
    let app = restart_with(
        &d.root,
        d.net.clone(),
        Duration::from_millis(20),
        Config {
            runtime_dir: Some(runtime_dir.clone()),
            ..config()
        },
    );
    let client = serve(app, &d.root);

    let status = client.status().await.unwrap();
    assert_eq!(status.pid, std::process::id());
    assert_eq!(status.vmm, banger_api::VmmKind::Firecracker);

    // An error keeps its code and its fix on the way to the client.
    match client.get_vm("ghost").await.unwrap_err() {
        ClientError::Api(e) => {
            assert_eq!(e.code, ErrorCode::NotFound);
            assert_eq!(e.message, "no VM named or with id \"ghost\"");
            assert!(e.hint.unwrap().contains("banger vm list"));
        }
        other => panic!("{other:?}"),
    }

    // Doctor runs in the daemon, with its config: the fake Firecracker is
    // the configured VMM, and the daemon reports itself.
    let checks = client.doctor().await.unwrap();
    let find = |name: &str| checks.iter().find(|c| c.name == name).cloned().unwrap();
    let firecracker = find("firecracker");
    assert_eq!(firecracker.status, CheckStatus::Pass);
    assert!(
        firecracker.detail.contains("fake-firecracker"),
        "{firecracker:?}"
    );
    let daemon = find("daemon");
    assert!(
        daemon.detail.contains(&std::process::id().to_string()),
        "{daemon:?}"
    );
    find("ip_forward");

    // The runtime bundle is looked up where the daemon looks.
    let runtime = client.runtime().await.unwrap();
    assert_eq!(runtime.dir, runtime_dir);
    assert_eq!(runtime.source, "runtime_dir in config.toml");
    assert!(!runtime.exists && runtime.manifest.is_none() && runtime.error.is_some());
}
