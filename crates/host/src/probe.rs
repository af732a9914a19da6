//! Probes from the host into a guest over its network: is sshd up (the
//! readiness fallback for guests without the agent), does a port serve the web.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

#[async_trait]
pub trait GuestProbe: Send + Sync {
    /// One quick attempt; true when the guest answered.
    async fn ready(&self, ip: Ipv4Addr) -> bool;

    /// One quick attempt; true when the guest's sshd port takes a
    /// connection: the network path to a guest whose sshd is known to run
    /// (a restored one) works. Cheaper than [`GuestProbe::ready`] where a
    /// banner costs the guest a process.
    async fn reachable(&self, ip: Ipv4Addr) -> bool {
        self.ready(ip).await
    }
}

/// Whether a guest's TCP port serves the web: `https` when a TLS handshake
/// (any certificate: this only detects, nothing is trusted) and a request
/// get an HTTP answer, `http` when a plain request does, else `None`.
/// Each attempt is bounded by `timeout`.
pub async fn web_protocol(ip: Ipv4Addr, port: u16, timeout: Duration) -> Option<&'static str> {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            // Only the guest is ever asked: a redirect is an answer (it is
            // a web server), never a request to wherever it points.
            .max_redirects(0)
            .proxy(None)
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
            .build()
            .into();
        ["https", "http"].into_iter().find(|scheme| {
            agent
                .head(format!("{scheme}://{ip}:{port}/"))
                .call()
                .is_ok()
        })
    })
    .await
    .ok()
    .flatten()
}

/// Connects to port 22 and expects `SSH-`.
pub struct SshBanner;

#[async_trait]
impl GuestProbe for SshBanner {
    async fn ready(&self, ip: Ipv4Addr) -> bool {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(SocketAddr::from((ip, 22)))
                .await
                .ok()?;
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).await.ok()?;
            (&buf == b"SSH-").then_some(())
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), attempt).await,
            Ok(Some(()))
        )
    }
    async fn reachable(&self, ip: Ipv4Addr) -> bool {
        let connect = tokio::net::TcpStream::connect(SocketAddr::from((ip, 22)));
        matches!(
            tokio::time::timeout(Duration::from_secs(2), connect).await,
            Ok(Ok(_))
        )
    }
}
