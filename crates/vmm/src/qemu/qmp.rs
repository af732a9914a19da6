//! Just enough of the QEMU Machine Protocol: greeting, capabilities, then
//! commands, each answered by its `return` value.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Runs one argument-less QMP command and waits for its `return`.
pub async fn execute(socket: &Path, command: &str) -> std::io::Result<()> {
    query(socket, &[command]).await.map(drop)
}

/// Runs argument-less QMP commands in order over one connection; returns
/// each command's `return` value.
pub async fn query(socket: &Path, commands: &[&str]) -> std::io::Result<Vec<Value>> {
    let requests: Vec<Value> = commands
        .iter()
        .map(|c| serde_json::json!({ "execute": c }))
        .collect();
    run(socket, &requests).await
}

/// Runs one command with arguments; its `return` value.
pub async fn call(socket: &Path, command: &str, arguments: Value) -> std::io::Result<Value> {
    let request = serde_json::json!({ "execute": command, "arguments": arguments });
    let mut answers = run(socket, &[request]).await?;
    Ok(answers.pop().unwrap_or(Value::Null))
}

async fn run(socket: &Path, requests: &[Value]) -> std::io::Result<Vec<Value>> {
    tokio::time::timeout(Duration::from_secs(5), session(socket, requests))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "QMP did not answer within 5s")
        })?
}

async fn session(socket: &Path, requests: &[Value]) -> std::io::Result<Vec<Value>> {
    let stream = UnixStream::connect(socket).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // Greeting first, then capabilities negotiation, then the commands.
    next_reply(&mut lines).await?;
    let mut answers = Vec::with_capacity(requests.len());
    let capabilities = serde_json::json!({ "execute": "qmp_capabilities" });
    for request in std::iter::once(&capabilities).chain(requests) {
        let command = request["execute"].as_str().unwrap_or_default();
        write.write_all(format!("{request}\n").as_bytes()).await?;
        let answer = loop {
            let mut reply = next_reply(&mut lines).await?;
            if reply.get("event").is_some() {
                continue; // asynchronous events interleave with replies
            }
            if let Some(error) = reply.get("error") {
                let said = error["desc"]
                    .as_str()
                    .map_or_else(|| error.to_string(), String::from);
                return Err(std::io::Error::other(format!("QMP {command}: {said}")));
            }
            break reply
                .get_mut("return")
                .map(Value::take)
                .unwrap_or(Value::Null);
        };
        if command != "qmp_capabilities" {
            answers.push(answer);
        }
    }
    Ok(answers)
}

async fn next_reply(
    lines: &mut tokio::io::Lines<BufReader<tokio::net::unix::OwnedReadHalf>>,
) -> std::io::Result<Value> {
    let line = lines.next_line().await?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "QMP closed the connection",
        )
    })?;
    serde_json::from_str(&line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
