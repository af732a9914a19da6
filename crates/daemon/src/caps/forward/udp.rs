//! UDP forwards: each client address gets a socket of its own toward the
//! guest, so replies find their way back; a session idle for a minute, or
//! whose VM stops, ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;

use super::Route;

const IDLE: Duration = Duration::from_secs(60);

pub(super) async fn serve(socket: UdpSocket, route: Route) {
    let socket = Arc::new(socket);
    let sessions: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buffer = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let Some(guest) = route.guest() else {
            continue; // the VM is not running: the datagram goes nowhere
        };
        let existing = sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let upstream = match existing {
            Some(upstream) => upstream,
            None => match open(guest).await {
                Ok(upstream) => {
                    let upstream = Arc::new(upstream);
                    sessions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(client, upstream.clone());
                    tokio::spawn(replies(
                        upstream.clone(),
                        socket.clone(),
                        client,
                        sessions.clone(),
                        route.clone(),
                    ));
                    upstream
                }
                Err(e) => {
                    tracing::debug!(%client, %guest, error = %e, "forward: cannot reach the guest");
                    continue;
                }
            },
        };
        let _ = upstream.send(&buffer[..n]).await;
    }
}

async fn open(guest: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if guest.is_ipv4() {
        "0.0.0.0:0".parse().expect("an address")
    } else {
        "[::]:0".parse().expect("an address")
    };
    let upstream = UdpSocket::bind(local).await?;
    upstream.connect(guest).await?;
    Ok(upstream)
}

/// The guest's answers to one client, until idle or the VM stops.
async fn replies(
    upstream: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    sessions: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
    route: Route,
) {
    let mut buffer = vec![0u8; 65536];
    let stopped = route.stopped();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            received = tokio::time::timeout(IDLE, upstream.recv(&mut buffer)) => match received {
                Ok(Ok(n)) => {
                    let _ = socket.send_to(&buffer[..n], client).await;
                }
                // Idle, or the guest's port is closed (ICMP): the session ends.
                _ => break,
            },
            () = &mut stopped => break,
        }
    }
    sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&client);
}
