//! The host side of the guest's vsock: as Firecracker does, the `uds_path`
//! of `PUT /vsock` is bound at that request, speaking the hybrid handshake
//! (`CONNECT <port>\n` → `OK <host port>\n`). The fake has no guest, so a
//! connection to the agent's port is bridged to a real `banger-agent`
//! listening on the Unix socket named by `FAKE_FIRECRACKER_AGENT`; any other
//! port, or no agent, closes the connection (nothing listens in the guest).

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Binds `path` (the real answer when it exists or its directory does not).
pub fn bind(path: &str) -> Result<std::os::unix::net::UnixListener, String> {
    std::os::unix::net::UnixListener::bind(path).map_err(|e| {
        format!("Vsock config error: Cannot create backend for vsock device: Error binding to the host-side Unix socket: {e}")
    })
}

/// Serves a bound socket once the microVM runs.
pub fn serve(listener: std::os::unix::net::UnixListener) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking vsock socket");
    let listener = tokio::net::UnixListener::from_std(listener).expect("vsock socket");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(connection(stream));
        }
    });
}

async fn connection(stream: tokio::net::UnixStream) {
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
