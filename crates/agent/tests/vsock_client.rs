//! The host's agent client through a hybrid vsock socket, as Firecracker
//! and vhost-device-vsock expose one: a stand-in VMM socket answers the
//! `CONNECT` handshake (or misbehaves) and forwards to the real agent.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_api::agent::{ExecFrame, ExecRequest};
use banger_client::agent::{AgentClient, AgentError};
use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use common::Agent;

/// How the stand-in VMM answers `CONNECT`.
#[derive(Clone, Copy)]
enum Vmm {
    /// `OK <n>` and then the agent's bytes.
    Forward,
    /// Closes the connection: no listener on that port in the guest.
    NoListener,
    Garbage,
    TooLong,
    Silent,
}

struct Setup {
    _agent: Agent,
    vsock: PathBuf,
}

async fn setup(vmm: Vmm) -> Setup {
    let agent = Agent::start();
    let agent_socket = agent.socket.clone();
    let vsock = agent.dir.path().join("vm.vsock");
    let listener = UnixListener::bind(&vsock).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(answer(stream, vmm, agent_socket.clone()));
        }
    });
    Setup {
        _agent: agent,
        vsock,
    }
}

async fn answer(mut stream: UnixStream, vmm: Vmm, agent: PathBuf) {
    let mut line = String::new();
    let mut reader = BufReader::new(&mut stream);
    reader.read_line(&mut line).await.unwrap();
    assert_eq!(line, "CONNECT 1024\n");
    drop(reader);
    match vmm {
        Vmm::Forward => {
            stream.write_all(b"OK 1073741824\n").await.unwrap();
            let mut upstream = UnixStream::connect(&agent).await.unwrap();
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        }
        Vmm::NoListener => {}
        Vmm::Garbage => stream.write_all(b"NOPE\n").await.unwrap(),
        Vmm::TooLong => stream.write_all(&[b'O'; 4096]).await.unwrap(),
        Vmm::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}

fn client(path: &Path) -> AgentClient {
    AgentClient::new(path).with_timeout(Duration::from_millis(800))
}

#[tokio::test]
async fn the_agent_answers_through_the_handshake() {
    let s = setup(Vmm::Forward).await;
    let agent = client(&s.vsock);
    assert_eq!(
        agent.health().await.unwrap().version,
        env!("CARGO_PKG_VERSION")
    );
    assert!(agent.stats().await.unwrap().memory_total_bytes > 0);
    assert!(!agent.ports().await.unwrap().is_empty());

    let mut out = Vec::new();
    let code = agent
        .exec(
            &ExecRequest {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "cat; echo done >&2; exit 7".into(),
                ],
                ..Default::default()
            },
            Bytes::from_static(b"piped in\n"),
            &mut |frame| {
                out.push(frame.clone());
                true
            },
        )
        .await
        .unwrap();
    assert_eq!(code, 7);
    assert!(out.iter().any(|f| matches!(f, ExecFrame::Stdout { .. })));
    assert!(out.iter().any(|f| matches!(f, ExecFrame::Stderr { .. })));
}

#[tokio::test]
async fn a_misbehaving_vmm_socket_gives_a_clear_error() {
    for (vmm, expect) in [
        (Vmm::NoListener, "nothing listens on vsock port 1024"),
        (Vmm::Garbage, "unexpected reply \"NOPE\""),
        (Vmm::TooLong, "too long"),
    ] {
        let s = setup(vmm).await;
        let err = client(&s.vsock).health().await.unwrap_err();
        assert!(matches!(err, AgentError::Refused(_)), "{err}");
        assert!(err.to_string().contains(expect), "{err}");
    }
    let s = setup(Vmm::Silent).await;
    let err = client(&s.vsock).health().await.unwrap_err();
    assert!(matches!(err, AgentError::Timeout(_)), "{err}");

    let err = client(Path::new("/nonexistent/vm.vsock"))
        .health()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/vm.vsock"), "{err}");
}
