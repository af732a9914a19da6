//! Port forwards on loopback (the "guest" is a local server, so nothing
//! leaves the host): TCP and UDP relayed, a port in use refused, a guest
//! that does not listen refused per connection while the forward keeps
//! listening, connections cut when the VM stops, forwards back after a
//! daemon restart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use banger_api::{Forward, Proto, Vm};
use banger_daemon::caps::forward::{ForwardError, Forwards, Target};
use banger_daemon::caps::Capability;
use banger_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn vm() -> Vm {
    let mut vm: Vm = serde_json::from_value(serde_json::json!({
        "id": "0a0b0c0d0e0f", "name": "fwd", "state": "running", "image": "default",
        "vmm": "qemu", "accel": "tcg", "vcpu": 1, "memory_mib": 128,
        "disk_size_bytes": 1, "overlay_size_bytes": 1, "nat": false,
        "ip": "172.30.0.2", "mac": "52:54:00:00:00:02", "tap": "bg-0a0b0c0d0e0f",
        "created_at": "2026-12-01T00:00:00Z", "dir": "/nonexistent"
    }))
    .unwrap();
    vm.name = "fwd".into();
    vm
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn to_loopback() -> Target {
    Arc::new(|_: &str| Some(LOOPBACK))
}

/// A TCP echo server, the guest's side.
async fn tcp_echo() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn tcp(host_port: u16, guest_port: u16) -> Forward {
    Forward {
        proto: Proto::Tcp,
        host_address: LOOPBACK,
        host_port,
        guest_port,
    }
}

async fn roundtrip(port: u16) -> std::io::Result<Vec<u8>> {
    let mut s = tokio::net::TcpStream::connect((LOOPBACK, port)).await?;
    s.write_all(b"ping").await?;
    let mut buf = vec![0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    Ok(buf)
}

#[tokio::test]
async fn tcp_forwards_relay_refuse_and_come_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
    let forwards = Forwards::with_target(store.clone(), to_loopback());
    let vm = vm();
    let guest = tcp_echo().await;
    let host = free_port();
    forwards.add(&vm, tcp(host, guest)).await.unwrap();
    assert_eq!(roundtrip(host).await.unwrap(), b"ping");

    // A host port in use: refused, nothing recorded.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let err = forwards.add(&vm, tcp(busy_port, guest)).await.unwrap_err();
    assert!(
        matches!(err, ForwardError::Taken { port, .. } if port == busy_port),
        "{err:?}"
    );
    assert_eq!(forwards.of(&vm.id).unwrap().len(), 1);

    // Nothing listens in the guest yet: that connection is closed, the
    // forward keeps listening.
    let silent = free_port();
    let host2 = free_port();
    forwards.add(&vm, tcp(host2, silent)).await.unwrap();
    let mut s = tokio::net::TcpStream::connect((LOOPBACK, host2))
        .await
        .unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "closed");
    assert!(
        tokio::net::TcpStream::connect((LOOPBACK, host2))
            .await
            .is_ok(),
        "still listening"
    );

    // The VM stops: its open connections end.
    let mut open = tokio::net::TcpStream::connect((LOOPBACK, host))
        .await
        .unwrap();
    open.write_all(b"ping").await.unwrap();
    let mut four = [0u8; 4];
    open.read_exact(&mut four).await.unwrap();
    forwards.stopped(&vm).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "cut with the VM");
    // ... and new ones work when it runs again.
    assert_eq!(roundtrip(host).await.unwrap(), b"ping");

    // A daemon restart: the recorded forwards listen again.
    drop(forwards);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = Forwards::with_target(store.clone(), to_loopback());
    again.reconcile(std::slice::from_ref(&vm)).await.unwrap();
    assert_eq!(roundtrip(host).await.unwrap(), b"ping");
    again.remove(&vm, Proto::Tcp, host).unwrap();
    again.remove_vm(&vm.id).unwrap();
    assert!(store.all_forwards().unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(roundtrip(host).await.is_err(), "removed: nothing listens");
}

#[tokio::test]
async fn udp_forwards_carry_datagrams_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db")).unwrap());
    let forwards = Forwards::with_target(store, to_loopback());
    let echo = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let guest = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = echo.recv_from(&mut buf).await {
            let _ = echo.send_to(&buf[..n], from).await;
        }
    });
    let host = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    forwards
        .add(
            &vm(),
            Forward {
                proto: Proto::Udp,
                host_address: LOOPBACK,
                host_port: host,
                guest_port: guest,
            },
        )
        .await
        .unwrap();
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .connect(SocketAddr::new(LOOPBACK, host))
        .await
        .unwrap();
    for word in [&b"one"[..], b"two"] {
        client.send(word).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], word);
    }
}
