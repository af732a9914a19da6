//! Is the guest up? Until the guest agent exists, a guest is ready when its
//! sshd answers with an SSH banner.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;

#[async_trait]
pub trait GuestProbe: Send + Sync {
    /// One quick attempt; true when the guest answered.
    async fn ready(&self, ip: Ipv4Addr) -> bool;
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
}
