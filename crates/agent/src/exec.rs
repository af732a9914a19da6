//! Running a command for the host: stdin streamed in from the request
//! body, stdout and stderr streamed out as JSON lines as they are written,
//! the exit code last. Each command runs in its own process group, whose id
//! the answer's `x-banger-exec-pid` header carries: the whole group is
//! killed when the connection goes away, or when the host asks
//! (`POST /v1/exec/{pid}/kill`) — the way out when the transport cannot
//! tell the guest that the host hung up (a blocked output stream).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::Mutex;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use banger_api::agent::{ExecFrame, ExecRequest, EXEC_HEADER, EXEC_PID_HEADER};
use base64::Engine;
use futures::StreamExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
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
    let pid = match start(&request) {
        Ok(child) => {
            let pid = child.id().unwrap_or(0);
            let killed = Arc::new(tokio::sync::Notify::new());
            RUNNING
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert_with(HashMap::new)
                .insert(pid, killed.clone());
            tokio::spawn(run(child, pid, body, tx, killed));
            pid
        }
        Err(e) => {
            let code = exit_code_of(&e, &request);
            let message = format!("cannot run {:?}: {e}", request.argv[0]);
            tokio::spawn(async move {
                let _ = tx.send(ExecFrame::Error { message }).await;
                let _ = tx.send(ExecFrame::Exit { code }).await;
            });
            0
        }
    };
    let lines = tokio_stream::wrappers::ReceiverStream::new(rx).map(|frame| {
        let mut line = serde_json::to_vec(&frame).expect("frames serialise");
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    (
        [
            ("content-type", "application/x-ndjson".to_string()),
            (EXEC_PID_HEADER, pid.to_string()),
        ],
        Body::from_stream(lines),
    )
        .into_response()
}

/// Process groups of the commands running now (only these may be killed),
/// each with how its task hears of a kill.
static RUNNING: Mutex<Option<HashMap<u32, Arc<tokio::sync::Notify>>>> = Mutex::new(None);

/// `POST /v1/exec/{pid}/kill`: ends a running command and everything it started.
pub async fn kill(Path(pid): Path<u32>) -> Response {
    let known = RUNNING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .and_then(|running| running.get(&pid).cloned());
    let Some(killed) = known else {
        return (
            StatusCode::NOT_FOUND,
            format!("no command of this agent runs as process group {pid}"),
        )
            .into_response();
    };
    kill_group(pid);
    // Its task may be stuck sending output nobody reads: let it go.
    killed.notify_one();
    StatusCode::NO_CONTENT.into_response()
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

/// A shell's code for a program that cannot start: 127 when it is nowhere
/// (a search of PATH that met an unreadable directory fails with EACCES,
/// yet nothing was found), 126 when it exists but cannot run.
fn exit_code_of(error: &std::io::Error, request: &ExecRequest) -> i32 {
    let program = std::path::Path::new(&request.argv[0]);
    let found = match error.kind() {
        std::io::ErrorKind::NotFound => false,
        _ if program.components().count() > 1 => true,
        _ => {
            let path = request
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| std::ffi::OsString::from(v))
                .or_else(|| std::env::var_os("PATH"))
                .unwrap_or_default();
            std::env::split_paths(&path).any(|dir| dir.join(program).exists())
        }
    };
    if found {
        126
    } else {
        127
    }
}

fn start(request: &ExecRequest) -> std::io::Result<tokio::process::Child> {
    let mut command = tokio::process::Command::new(&request.argv[0]);
    command
        .args(&request.argv[1..])
        .envs(request.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a kill reaches what it started too.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &request.cwd {
        command.current_dir(cwd);
    }
    command.spawn()
}

async fn run(
    mut child: tokio::process::Child,
    pid: u32,
    body: Body,
    tx: mpsc::Sender<ExecFrame>,
    killed: Arc<tokio::sync::Notify>,
) {
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
        _ = killed.notified() => None,
        status = async {
            let _ = out.await;
            let _ = err.await;
            child.wait().await
        } => Some(status),
    };
    let Some(status) = outcome else {
        kill_group(pid);
        let _ = child.wait().await;
        forget(pid);
        return;
    };
    forget(pid);
    let code = match status {
        Ok(status) => status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        }),
        Err(_) => 255,
    };
    let _ = tx.send(ExecFrame::Exit { code }).await;
}

fn forget(pid: u32) {
    if let Some(running) = RUNNING.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        running.remove(&pid);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn request(program: &str, path: &std::path::Path) -> ExecRequest {
        ExecRequest {
            argv: vec![program.into()],
            env: vec![("PATH".into(), path.display().to_string())],
            cwd: None,
        }
    }

    #[test]
    fn a_program_found_nowhere_is_127_even_when_the_search_met_eacces() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("there"), b"").unwrap();
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(exit_code_of(&denied, &request("absent", dir.path())), 127);
        assert_eq!(exit_code_of(&denied, &request("there", dir.path())), 126);
        assert_eq!(exit_code_of(&denied, &request("./x", dir.path())), 126);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(exit_code_of(&missing, &request("there", dir.path())), 127);
    }
}
