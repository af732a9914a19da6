//! The daemon's side of the helper: a [`Network`] whose operations the
//! helper performs. Reads (links, routes) need no privilege and stay local.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use banger_host::net::{default_route_interface, IpNetwork, Network};
use banger_host::privileged::{Op, Outcome};
use banger_host::runner::SystemRunner;
use banger_host::HostError;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::protocol::{Answer, Request, Welcome};

/// Long enough for a busy iptables lock (5 s) and then some.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

pub struct HelperNetwork {
    socket: PathBuf,
    /// For the read-only questions, answered here.
    local: IpNetwork<SystemRunner>,
}

impl HelperNetwork {
    pub fn new(socket: PathBuf) -> HelperNetwork {
        HelperNetwork {
            socket,
            local: IpNetwork::new(SystemRunner),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The helper's version and this user's network.
    pub async fn hello(&self) -> Result<Welcome, HostError> {
        match self.ask(&Request::Hello).await? {
            Answer::Welcome(welcome) => Ok(welcome),
            other => Err(unexpected(other)),
        }
    }

    async fn ask(&self, request: &Request) -> Result<Answer, HostError> {
        let exchange = async {
            let stream = UnixStream::connect(&self.socket).await?;
            let (read, mut write) = stream.into_split();
            let mut line = serde_json::to_vec(request).expect("requests serialise");
            line.push(b'\n');
            write.write_all(&line).await?;
            let mut answer = String::new();
            BufReader::new(read).read_line(&mut answer).await?;
            serde_json::from_str::<Answer>(&answer)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
        };
        match tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(source)) => Err(HostError::NoHelper {
                socket: self.socket.clone(),
                source,
            }),
            Err(_) => Err(HostError::NoHelper {
                socket: self.socket.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"),
            }),
        }
    }
}

fn unexpected(answer: Answer) -> HostError {
    match answer {
        Answer::Refused { reason } => HostError::HelperRefused { reason },
        Answer::Failed { error } => HostError::HelperFailed { error },
        other => HostError::HelperFailed {
            error: format!("unexpected answer {other:?}"),
        },
    }
}

#[async_trait]
impl Network for HelperNetwork {
    async fn perform(&self, op: &Op) -> Result<Outcome, HostError> {
        op.validate()?;
        match self.ask(&Request::Perform { op: op.clone() }).await? {
            Answer::Done { outcome } => Ok(outcome),
            other => Err(unexpected(other)),
        }
    }

    async fn uplink(&self) -> Result<Option<String>, HostError> {
        Ok(default_route_interface())
    }

    fn has_link(&self, name: &str) -> bool {
        self.local.has_link(name)
    }

    fn link_master(&self, name: &str) -> Option<String> {
        self.local.link_master(name)
    }
}
