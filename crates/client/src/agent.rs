//! The host side of the guest agent: HTTP over a guest's vsock, reached
//! through the hybrid vsock Unix socket that Firecracker (and, under QEMU,
//! vhost-device-vsock) exposes: connect, send `CONNECT <port>\n`, read a
//! line starting with `OK `, then the stream is the guest's socket. One
//! client for both VMMs. Every call has a timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use banger_api::agent::{
    ExecFrame, ExecRequest, GuestStats, Health, Identity, IdentityDone, Listener, AGENT_PORT,
    AGENT_PREFIX, EXEC_HEADER, EXEC_PID_HEADER,
};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot reach the VM's vsock socket {}", .path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The VMM answered the handshake with something other than `OK`:
    /// usually nothing listens on the port in the guest (agent not running).
    #[error("the guest agent did not accept the connection ({0})")]
    Refused(String),
    #[error("the guest agent did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the guest agent answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("talking to the guest agent: {0}")]
    Protocol(String),
    /// The caller stopped reading an exec's output (its reader went away);
    /// the connection is closed, which ends the command in the guest.
    #[error("the output of the command could not be delivered")]
    Stopped,
}

/// Why a VM's agent cannot be used, as a user should read it: what failed,
/// and (in [`Unusable::hint`]) what to do, making clear the VM itself is
/// still manageable.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// Nothing answers on the host side: the VMM (or QEMU's vsock helper)
    /// is gone, not the guest's agent.
    #[error("the host side of VM {vm}'s vsock is not answering")]
    HostSide {
        vm: String,
        #[source]
        source: AgentError,
    },
    #[error("the guest agent of VM {vm} is not answering")]
    Silent {
        vm: String,
        #[source]
        source: AgentError,
    },
    #[error("VM {vm} has no guest agent: its image {image} was made without one")]
    NotInImage { vm: String, image: String },
}

impl Unusable {
    /// The agent of VM `vm` failed with `source`.
    pub fn new(vm: &str, source: AgentError) -> Unusable {
        let vm = vm.to_string();
        match source {
            AgentError::Connect { .. } => Unusable::HostSide { vm, source },
            _ => Unusable::Silent { vm, source },
        }
    }

    pub fn hint(&self) -> String {
        match self {
            Unusable::HostSide { vm, .. } => format!(
                "its VMM or vsock helper is not running: `banger vm restart {vm}`; `banger doctor` checks vhost-device-vsock"
            ),
            Unusable::Silent { vm, .. } => format!(
                "the VM itself is fine to use and manage (`banger vm ssh {vm}`, stop, restart); \
                 check the agent in the guest with `systemctl status banger-agent`, or restart the VM. \
                 Images built before the agent existed need `banger image build` again; QEMU hosts need \
                 vhost-device-vsock (`banger doctor`)"
            ),
            Unusable::NotInImage { vm, image } => format!(
                "rebuild the image (`banger image build --name {image}`) and create the VM again; `banger vm ssh {vm}` works meanwhile"
            ),
        }
    }
}

/// The agent of the VM whose directory is `vm_dir`.
pub fn for_vm_dir(vm_dir: &Path) -> AgentClient {
    AgentClient::new(banger_api::files::VmFiles::new(vm_dir).vsock())
}

/// The agent of `vm`, with a timeout that suits how it runs: a guest under
/// software emulation sharing a busy host can take many seconds to get to
/// a new connection, which is slowness, not a dead agent.
pub fn for_vm(vm: &banger_api::vm::Vm) -> AgentClient {
    let timeout = match vm.accel {
        banger_api::Accel::Kvm => Duration::from_secs(5),
        banger_api::Accel::Tcg => Duration::from_secs(30),
    };
    for_vm_dir(&vm.dir).with_timeout(timeout)
}

#[derive(Debug, Clone)]
pub struct AgentClient {
    socket: PathBuf,
    timeout: Duration,
}

/// The longest handshake reply accepted (Firecracker sends `OK <port>\n`).
const MAX_REPLY: usize = 64;

impl AgentClient {
    /// `socket` is the VM's hybrid vsock Unix socket.
    pub fn new(socket: impl Into<PathBuf>) -> AgentClient {
        AgentClient {
            socket: socket.into(),
            timeout: Duration::from_secs(5),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> AgentClient {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// A connected stream to the agent, after the `CONNECT` handshake.
    pub async fn connect(&self) -> Result<UnixStream, AgentError> {
        self.timed(handshake(&self.socket, AGENT_PORT)).await?
    }

    async fn timed<T>(&self, work: impl std::future::Future<Output = T>) -> Result<T, AgentError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| AgentError::Timeout(self.timeout))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, AgentError> {
        self.call("GET", path, Bytes::new()).await
    }

    /// One request with a whole body and a JSON answer, within the timeout.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<T, AgentError> {
        let answer = self
            .timed(async {
                let response =
                    send(self.connect().await?, method, path, None, Full::new(body)).await?;
                collect(response).await
            })
            .await??;
        serde_json::from_slice(&answer)
            .map_err(|e| AgentError::Protocol(format!("bad answer: {e}")))
    }

    /// Ends a command this client no longer reads from. Closing the
    /// connection would, but not every vsock transport tells the guest in
    /// time when its output is blocked, so the agent is asked outright.
    async fn stop(&self, group: Option<u32>) {
        let Some(group) = group else { return };
        let kill = async {
            let response = send(
                self.connect().await?,
                "POST",
                &format!("/exec/{group}/kill"),
                None,
                Full::new(Bytes::new()),
            )
            .await?;
            collect(response).await.map(drop)
        };
        // Best effort: the connection closing is the other way it ends.
        let _ = self.timed(kill).await;
    }

    pub async fn health(&self) -> Result<Health, AgentError> {
        self.get("/health").await
    }

    pub async fn ports(&self) -> Result<Vec<Listener>, AgentError> {
        self.get("/ports").await
    }

    pub async fn stats(&self) -> Result<GuestStats, AgentError> {
        self.get("/stats").await
    }

    /// Makes a guest restored from another's memory its own VM (see
    /// [`Identity`]).
    pub async fn identity(&self, identity: &Identity) -> Result<IdentityDone, AgentError> {
        let body = serde_json::to_vec(identity).expect("an identity serialises");
        self.call("POST", "/identity", Bytes::from(body)).await
    }

    /// Runs a command with `stdin` as its input; calls `on_frame` for each
    /// piece of output as it arrives (returning false stops: the command is
    /// ended and [`AgentError::Stopped`] returned); returns the exit code.
    /// The timeout covers reaching the agent, not how long the command runs.
    pub async fn exec(
        &self,
        request: &ExecRequest,
        stdin: Bytes,
        on_frame: &mut (dyn FnMut(&ExecFrame) -> bool + Send),
    ) -> Result<i32, AgentError> {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        if !stdin.is_empty() {
            tx.send(stdin).await.expect("the receiver is alive");
        }
        drop(tx);
        let never = tokio::sync::Notify::new();
        self.exec_streaming(request, rx, on_frame, &never).await
    }

    /// Like [`exec`](Self::exec), with stdin streamed: each chunk received
    /// goes to the command as it comes; the channel closing is end of input.
    /// A notification on `cancel` (Ctrl-C) ends the command like a stop.
    pub async fn exec_streaming(
        &self,
        request: &ExecRequest,
        stdin: tokio::sync::mpsc::Receiver<Bytes>,
        on_frame: &mut (dyn FnMut(&ExecFrame) -> bool + Send),
        cancel: &tokio::sync::Notify,
    ) -> Result<i32, AgentError> {
        let header = serde_json::to_string(request).expect("requests serialise");
        let stream = self.connect().await?;
        let body = StreamBody::new(
            tokio_stream::wrappers::ReceiverStream::new(stdin)
                .map(|chunk| Ok::<_, std::convert::Infallible>(Frame::data(chunk))),
        );
        let response = self
            .timed(send(stream, "POST", "/exec", Some(header), body))
            .await??;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = collect(response).await.unwrap_or_default();
            return Err(AgentError::Status {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        let group: Option<u32> = response
            .headers()
            .get(EXEC_PID_HEADER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .filter(|pid| *pid > 0);
        let mut body = response.into_body();
        let mut buffer = Vec::new();
        loop {
            let next = tokio::select! {
                next = body.frame() => next,
                () = cancel.notified() => {
                    self.stop(group).await;
                    return Err(AgentError::Stopped);
                }
            };
            let Some(frame) = next else { break };
            let frame =
                frame.map_err(|e| AgentError::Protocol(format!("exec stream broken: {e}")))?;
            let Some(data) = frame.data_ref() else {
                continue;
            };
            buffer.extend_from_slice(data);
            while let Some(newline) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=newline).collect();
                let frame: ExecFrame = serde_json::from_slice(&line)
                    .map_err(|e| AgentError::Protocol(format!("bad exec frame: {e}")))?;
                if let ExecFrame::Exit { code } = frame {
                    return Ok(code);
                }
                if !on_frame(&frame) {
                    self.stop(group).await;
                    return Err(AgentError::Stopped);
                }
            }
        }
        Err(AgentError::Protocol(
            "the exec stream ended without an exit code (the guest went away?)".into(),
        ))
    }
}

/// Connects to the hybrid vsock socket and asks for `port`.
pub async fn handshake(socket: &Path, port: u32) -> Result<UnixStream, AgentError> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|source| AgentError::Connect {
            path: socket.to_path_buf(),
            source,
        })?;
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .await
        .map_err(|e| AgentError::Refused(format!("handshake write failed: {e}")))?;
    // Read the reply byte by byte: whatever follows the newline already
    // belongs to the agent's HTTP answer.
    let mut reader = BufReader::with_capacity(1, &mut stream);
    let mut reply = Vec::new();
    loop {
        let buf = reader
            .fill_buf()
            .await
            .map_err(|e| AgentError::Refused(format!("handshake read failed: {e}")))?;
        let Some(&byte) = buf.first() else {
            return Err(AgentError::Refused(if reply.is_empty() {
                format!("the VMM closed the connection: nothing listens on vsock port {port} in the guest")
            } else {
                format!("unexpected reply {:?}", String::from_utf8_lossy(&reply))
            }));
        };
        reader.consume(1);
        if byte == b'\n' {
            break;
        }
        reply.push(byte);
        if reply.len() > MAX_REPLY {
            return Err(AgentError::Refused("handshake reply too long".into()));
        }
    }
    // Only the prefix is specified; what follows `OK ` varies by VMM.
    if !reply.starts_with(b"OK ") {
        return Err(AgentError::Refused(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(&reply)
        )));
    }
    Ok(stream)
}

async fn send<B>(
    stream: UnixStream,
    method: &str,
    path: &str,
    exec: Option<String>,
    body: B,
) -> Result<hyper::Response<hyper::body::Incoming>, AgentError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| AgentError::Protocol(e.to_string()))?;
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{AGENT_PREFIX}{path}"))
        .header("host", "banger-agent");
    if let Some(exec) = exec {
        request = request.header(EXEC_HEADER, exec);
    }
    sender
        .send_request(request.body(body).expect("request parts are valid"))
        .await
        .map_err(|e| AgentError::Protocol(e.to_string()))
}

async fn collect(response: hyper::Response<hyper::body::Incoming>) -> Result<Bytes, AgentError> {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| AgentError::Protocol(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(AgentError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok(body)
}
