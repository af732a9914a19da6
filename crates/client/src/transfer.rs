//! Files into and out of a guest as tar streams through its agent: the
//! guest's own `tar` at the far end, nothing held in memory whole. Used by
//! `vm cp`, `vm run` (the CLI) and `file_sync` (the daemon).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use banger_api::agent::{ExecFrame, ExecRequest};
use base64::Engine;
use bytes::Bytes;

use crate::agent::{AgentClient, AgentError};

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The guest's side exited non-zero.
    #[error("{program} in the guest failed ({code}): {stderr}")]
    Failed {
        program: String,
        code: i32,
        stderr: String,
    },
    /// Reading what is sent failed (a file vanished, a permission).
    #[error("cannot read what is being copied")]
    Read(#[source] std::io::Error),
}

/// No input for the guest's command.
pub fn no_input() -> tokio::sync::mpsc::Receiver<Bytes> {
    tokio::sync::mpsc::channel(1).1
}

/// Runs `argv` in the guest with `stdin`; its stdout goes to `on_stdout`
/// (false stops it); fails with its stderr unless it exits 0.
pub async fn run(
    agent: &AgentClient,
    argv: &[&str],
    stdin: tokio::sync::mpsc::Receiver<Bytes>,
    on_stdout: &mut (dyn FnMut(Vec<u8>) -> bool + Send),
) -> Result<(), TransferError> {
    let request = ExecRequest {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: Vec::new(),
        cwd: None,
    };
    let mut stderr = Vec::new();
    let never = tokio::sync::Notify::new();
    let decode = |data: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_default()
    };
    let code = agent
        .exec_streaming(
            &request,
            stdin,
            &mut |frame| match frame {
                ExecFrame::Stdout { data } => on_stdout(decode(data)),
                ExecFrame::Stderr { data } => {
                    stderr.extend(decode(data));
                    true
                }
                ExecFrame::Error { message } => {
                    stderr.extend(message.as_bytes());
                    true
                }
                ExecFrame::Exit { .. } => true,
            },
            &never,
        )
        .await?;
    if code != 0 {
        return Err(TransferError::Failed {
            program: argv[0].to_string(),
            code,
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Sends what tar writes to the guest, in pieces, counting them.
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    sent: Arc<AtomicU64>,
    on_bytes: Arc<dyn Fn(u64) + Send + Sync>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the guest stopped reading")
            })?;
        let n = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        self.sent.fetch_add(n, Ordering::SeqCst);
        (self.on_bytes)(n);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams the archive `build` writes into the guest directory `dir`
/// (made if missing), unpacked there with modes kept and root as owner.
/// `on_bytes` hears each piece sent. Returns the bytes sent.
pub async fn push(
    agent: &AgentClient,
    dir: &str,
    on_bytes: Arc<dyn Fn(u64) + Send + Sync>,
    build: impl FnOnce(&mut tar::Builder<ChannelWriter>) -> std::io::Result<()> + Send + 'static,
) -> Result<u64, TransferError> {
    let sent = Arc::new(AtomicU64::new(0));
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let writer = ChannelWriter {
        tx,
        sent: sent.clone(),
        on_bytes,
    };
    let packer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut tar = tar::Builder::new(writer);
        tar.follow_symlinks(false);
        build(&mut tar)?;
        tar.into_inner()?.flush()
    });
    let extract = "mkdir -p -- \"$1\" && exec tar -x -p --no-same-owner -f - -C \"$1\"";
    let result = run(agent, &["sh", "-c", extract, "sh", dir], rx, &mut |_| true).await;
    let packed = packer.join().expect("the tar writer does not panic");
    result?;
    packed.map_err(TransferError::Read)?;
    Ok(sent.load(Ordering::SeqCst))
}
