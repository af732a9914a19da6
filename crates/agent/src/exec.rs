//! Running a command for the host: stdin streamed in from the request
//! body, stdout and stderr streamed out as JSON lines as they are written,
//! the exit code last. The command dies with the connection.

use std::process::Stdio;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use banger_api::agent::{ExecFrame, ExecRequest, EXEC_HEADER};
use base64::Engine;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

pub async fn exec(headers: HeaderMap, body: Body) -> Response {
    let request: ExecRequest = match headers
        .get(EXEC_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(serde_json::from_str)
    {
        Some(Ok(r)) => r,
        Some(Err(e)) => return bad_request(format!("bad {EXEC_HEADER} header: {e}")),
        None => return bad_request(format!("missing {EXEC_HEADER} header")),
    };
    if request.argv.is_empty() {
        return bad_request("argv is empty".into());
    }
    // A short queue: output waits in the pipe, not in the agent's memory.
    let (tx, rx) = mpsc::channel::<ExecFrame>(4);
    tokio::spawn(run(request, body, tx));
    let lines = tokio_stream::wrappers::ReceiverStream::new(rx).map(|frame| {
        let mut line = serde_json::to_vec(&frame).expect("frames serialise");
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    (
        [("content-type", "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

async fn run(request: ExecRequest, body: Body, tx: mpsc::Sender<ExecFrame>) {
    let mut command = tokio::process::Command::new(&request.argv[0]);
    command
        .args(&request.argv[1..])
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(cwd) = &request.cwd {
        command.current_dir(cwd);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            let _ = tx
                .send(ExecFrame::Error {
                    message: format!("cannot run {:?}: {e}", request.argv[0]),
                })
                .await;
            let _ = tx.send(ExecFrame::Exit { code }).await;
            return;
        }
    };
    // stdin: copy the request body as it arrives, then close it.
    if let Some(mut stdin) = child.stdin.take() {
        tokio::spawn(async move {
            let mut data = body.into_data_stream();
            while let Some(Ok(chunk)) = data.next().await {
                if stdin.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
    }
    let out = tokio::spawn(pump(child.stdout.take(), tx.clone(), true));
    let err = tokio::spawn(pump(child.stderr.take(), tx.clone(), false));
    // The command runs until it ends, or until the host goes away (its
    // answer stream is dropped, closing `tx`): then it is killed, never
    // left running unseen in the guest, even when it prints nothing.
    let outcome = tokio::select! {
        _ = tx.closed() => None,
        status = async {
            let _ = out.await;
            let _ = err.await;
            child.wait().await
        } => Some(status),
    };
    let Some(status) = outcome else {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return;
    };
    let code = match status {
        Ok(status) => status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        }),
        Err(_) => 255,
    };
    let _ = tx.send(ExecFrame::Exit { code }).await;
}

/// Forwards one output pipe; stops (and so ends the command, which is
/// killed on drop) when the host has gone away.
async fn pump(pipe: Option<impl AsyncRead + Unpin>, tx: mpsc::Sender<ExecFrame>, stdout: bool) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let data = base64::engine::general_purpose::STANDARD.encode(&buf[..n]);
        let frame = if stdout {
            ExecFrame::Stdout { data }
        } else {
            ExecFrame::Stderr { data }
        };
        if tx.send(frame).await.is_err() {
            return;
        }
    }
}
