//! Just enough of the QEMU Machine Protocol: greeting, capabilities, one command.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Runs one argument-less QMP command and waits for its `return`.
pub async fn execute(socket: &Path, command: &str) -> std::io::Result<()> {
    tokio::time::timeout(Duration::from_secs(5), execute_inner(socket, command))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "QMP did not answer within 5s")
        })?
}

async fn execute_inner(socket: &Path, command: &str) -> std::io::Result<()> {
    let stream = UnixStream::connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // Greeting first, then capabilities negotiation, then the command.
    next_reply(&mut lines).await?;
    for request in [
        serde_json::json!({"execute": "qmp_capabilities"}),
        serde_json::json!({"execute": command}),
    ] {
        write.write_all(format!("{request}\n").as_bytes()).await?;
        loop {
            let reply = next_reply(&mut lines).await?;
            if reply.get("event").is_some() {
                continue; // asynchronous events interleave with replies
            }
            if let Some(error) = reply.get("error") {
                return Err(std::io::Error::other(format!("QMP {command}: {error}")));
            }
            break;
        }
    }
    Ok(())
}

async fn next_reply(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> std::io::Result<serde_json::Value> {
    let line = lines.next_line().await?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "QMP closed the connection",
        )
    })?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
