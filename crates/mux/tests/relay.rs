//! `banger-relay` between the host's agent client and the real agent
//! served on a guest end, with a Unix socket standing in for QEMU's
//! chardev (QEMU serves it; the relay connects, as in a VM).

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use banger_api::agent::{ExecFrame, ExecRequest};
use banger_client::agent::AgentClient;
use tokio::net::UnixListener;

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn relay(serial: &Path, listen: &Path) -> Relay {
    Relay(
        Command::new(env!("CARGO_BIN_EXE_banger-relay"))
            .arg("--serial")
            .arg(serial)
            .arg("--listen")
            .arg(listen)
            .spawn()
            .unwrap(),
    )
}

/// The guest: the agent's server on each connection QEMU's stand-in gets.
fn guest(chardev: UnixListener) {
    let (link, _serving) = banger_agent::serial::server(banger_agent::router());
    tokio::spawn(async move {
        loop {
            let (conn, _) = chardev.accept().await.unwrap();
            let (r, w) = conn.into_split();
            link.run(r, w).await;
        }
    });
}

async fn until_healthy(agent: &AgentClient) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while agent.health().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent never answered through the relay"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run(agent: &AgentClient, script: &str) -> (i32, String) {
    let request = ExecRequest {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: Vec::new(),
        cwd: None,
    };
    let mut out = Vec::new();
    let code = agent
        .exec(&request, bytes::Bytes::new(), &mut |frame| {
            if let ExecFrame::Stdout { data } = frame {
                use base64::Engine;
                out.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap(),
                );
            }
            true
        })
        .await
        .unwrap();
    (code, String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_answers_through_the_relay_and_again_after_a_new_relay() {
    let dir = tempfile::tempdir().unwrap();
    let chardev = dir.path().join("agent.sock");
    let vsock = dir.path().join("vm.vsock");
    guest(UnixListener::bind(&chardev).unwrap());
    let agent = AgentClient::new(&vsock);

    let first = relay(&chardev, &vsock);
    until_healthy(&agent).await;
    let (code, out) = run(&agent, "echo hello; seq 1 20000 | tail -n 1; exit 3").await;
    assert_eq!((code, out.as_str()), (3, "hello\n20000\n"));
    // Health, ports and an exec at once share the one port.
    let (a, b, c) = tokio::join!(agent.health(), agent.ports(), run(&agent, "echo x"));
    assert!(a.is_ok() && b.is_ok() && c.0 == 0);

    // A restored guest meets a new relay (the old one went with its QEMU).
    drop(first);
    let _second = relay(&chardev, &vsock);
    until_healthy(&agent).await;
    assert_eq!(run(&agent, "echo again").await.1, "again\n");
}

#[tokio::test]
async fn a_port_the_guest_does_not_serve_is_refused_like_firecracker_does() {
    let dir = tempfile::tempdir().unwrap();
    let chardev = dir.path().join("agent.sock");
    let vsock = dir.path().join("vm.vsock");
    guest(UnixListener::bind(&chardev).unwrap());
    let _relay = relay(&chardev, &vsock);
    until_healthy(&AgentClient::new(&vsock)).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::UnixStream::connect(&vsock).await.unwrap();
    conn.write_all(b"CONNECT 7777\n").await.unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).await.unwrap();
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
}
