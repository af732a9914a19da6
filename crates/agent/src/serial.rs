//! The agent over QEMU's virtio-serial port `org.banger.agent`, for guests
//! the host saves and restores (vhost-user vsock cannot be migrated). The
//! port carries many connections ([`banger_mux`]); a new host end (a relay
//! started for a restored guest) resets them in band.
//!
//! The host says which channel a guest has on the kernel command line
//! (`banger.agent=serial`), so a guest never waits for a port it lacks.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::io::{Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use banger_mux::{Accepted, Link};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use banger_api::agent::{SERIAL_FLAG, SERIAL_PORT_NAME as PORT_NAME};

/// Whether the host gave this guest the serial channel.
pub fn selected() -> bool {
    std::fs::read_to_string("/proc/cmdline")
        .map(|c| c.split_whitespace().any(|arg| arg == SERIAL_FLAG))
        .unwrap_or(false)
}

/// The port's device, from sysfs (no udev rule needed): `/dev/vportNpM`
/// whose `name` is [`PORT_NAME`].
fn find_port(sysfs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(sysfs).ok()?.flatten().find_map(|entry| {
        let name = std::fs::read_to_string(entry.path().join("name")).ok()?;
        (name.trim() == PORT_NAME).then(|| Path::new("/dev").join(entry.file_name()))
    })
}

/// Waits for the port to appear (the driver may load after the agent
/// starts; it is asked for once).
async fn wait_for_port() -> PathBuf {
    let sysfs = Path::new("/sys/class/virtio-ports");
    let mut asked = false;
    let started = tokio::time::Instant::now();
    loop {
        if let Some(port) = find_port(sysfs) {
            return port;
        }
        if !asked && started.elapsed() > Duration::from_secs(2) {
            asked = true;
            let _ = tokio::process::Command::new("modprobe")
                .arg("virtio_console")
                .status()
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Accepted streams, for `axum::serve`.
struct Streams(mpsc::Receiver<Accepted>);

impl axum::serve::Listener for Streams {
    type Io = tokio::io::DuplexStream;
    type Addr = u32;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.0.recv().await {
            Some(accepted) => (accepted.stream, accepted.port),
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<u32> {
        Ok(banger_api::agent::AGENT_PORT)
    }
}

/// The guest end of a channel whose streams `app` serves; [`Link::run`]
/// it on the port (or, in tests, on any byte stream).
pub fn server(app: axum::Router) -> (Link, tokio::task::JoinHandle<std::io::Result<()>>) {
    let (accepted, streams) = mpsc::channel(64);
    let link = Link::guest(vec![banger_api::agent::AGENT_PORT], accepted);
    let serving = tokio::spawn(async move { axum::serve(Streams(streams), app).await });
    (link, serving)
}

/// Serves the agent on the port, for as long as the agent runs.
pub async fn serve(app: axum::Router) -> std::io::Result<()> {
    let (link, serving) = server(app);
    let port = wait_for_port().await;
    eprintln!("banger-agent: serving on {}", port.display());
    {
        // Stopped (SIGTERM): the host refuses new connections at once
        // instead of waiting for an answer that will not come.
        let link = link.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            term.recv().await;
            link.say_goodbye().await;
            std::process::exit(0);
        });
    }
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&port)?;
        // SAFETY: the File owns its descriptor, and the AsyncFd owns the
        // File until it is dropped: the descriptor stays open and the same.
        let port = unsafe { AsyncFd::register(file) }.map_err(std::io::Error::from)?;
        let (reader, writer) = tokio::io::split(Port(port));
        link.run(reader, writer).await;
        if serving.is_finished() {
            return Err(std::io::Error::other("the agent's server stopped"));
        }
        // The host end is not connected (the port reads as ended): look
        // again shortly; a connecting host says HELLO.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The port's device, non-blocking. A read of it returns one buffer the
/// host filled (a page), not all that is waiting, so a short read does
/// not mean it is drained (as tokio's pipes and sockets assume): readiness
/// is cleared only when a read says it would block.
struct Port(AsyncFd<std::fs::File>);

impl AsyncRead for Port {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let mut guard = ready!(self.0.poll_read_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().read(buf.initialize_unfilled())) {
                Ok(result) => {
                    buf.advance(result?);
                    return Poll::Ready(Ok(()));
                }
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Port {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        loop {
            let mut guard = ready!(self.0.poll_write_ready(cx))?;
            match guard.try_io(|fd| fd.get_ref().write(data)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_found_by_its_name() {
        let sysfs = tempfile::tempdir().unwrap();
        for (dev, name) in [("vport0p0", "other"), ("vport0p1", PORT_NAME)] {
            std::fs::create_dir(sysfs.path().join(dev)).unwrap();
            std::fs::write(sysfs.path().join(dev).join("name"), format!("{name}\n")).unwrap();
        }
        assert_eq!(
            find_port(sysfs.path()),
            Some(PathBuf::from("/dev/vport0p1"))
        );
        assert_eq!(find_port(&sysfs.path().join("missing")), None);
    }
}
