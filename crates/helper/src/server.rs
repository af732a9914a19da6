//! The helper's socket. Anyone may connect (mode 0666); the kernel says who
//! did (`SO_PEERCRED`), and only the owners the helper was started for get
//! anything done. One request per line, one answer per request; a request
//! that is too long, not JSON or unknown is refused and, unless it was too
//! long to find its end, the connection serves the next one.

use std::path::Path;
use std::sync::Arc;

use banger_host::net::Network;
use banger_host::privileged::{Op, Outcome};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

use crate::lease::Lease;
use crate::policy::{self, World};
use crate::protocol::{Answer, Request, Welcome, MAX_REQUEST};

/// What the helper serves with.
pub struct Helper {
    pub leases: Vec<Lease>,
    pub net: Arc<dyn Network>,
    pub world: Arc<dyn World>,
    /// One host change at a time, whoever asks (ip and iptables calls of
    /// two owners never interleave).
    pub one_at_a_time: Mutex<()>,
}

impl Helper {
    pub fn new(leases: Vec<Lease>, net: Arc<dyn Network>, world: Arc<dyn World>) -> Helper {
        Helper {
            leases,
            net,
            world,
            one_at_a_time: Mutex::new(()),
        }
    }

    /// Binds `socket` (its directory made, a stale socket replaced) so
    /// every local user can connect; callers are checked per connection.
    pub fn bind(socket: &Path) -> std::io::Result<UnixListener> {
        use std::os::unix::fs::PermissionsExt;
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::remove_file(socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let listener = UnixListener::bind(socket)?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666))?;
        Ok(listener)
    }

    /// Serves until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = listener.accept().await?;
            let helper = self.clone();
            tokio::spawn(async move {
                if let Err(e) = helper.connection(stream).await {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        }
    }

    async fn connection(&self, stream: UnixStream) -> std::io::Result<()> {
        let uid = stream.peer_cred()?.uid();
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let lease = self.leases.iter().find(|l| l.uid == uid).cloned();
        loop {
            let mut line = Vec::new();
            let n = (&mut reader)
                .take(u64::try_from(MAX_REQUEST + 1).unwrap_or(u64::MAX))
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Ok(());
            }
            if line.len() > MAX_REQUEST {
                let answer = refuse(uid, format!("request longer than {MAX_REQUEST} bytes"));
                send(&mut write, &answer).await?;
                // Its end is not known: the connection goes. Closing with
                // the rest unread would reset it under the answer (the
                // client would read ECONNRESET, not the refusal), so the
                // answer is followed by end of stream and what the client
                // still sends is read away, within bounds.
                write.shutdown().await?;
                let mut rest = (&mut reader).take(16 << 20);
                let mut sink = tokio::io::sink();
                let drain = tokio::io::copy(&mut rest, &mut sink);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                return Ok(());
            }
            let answer = match &lease {
                None => refuse(uid, self.not_an_owner(uid)),
                Some(lease) => self.answer(lease, &line).await,
            };
            send(&mut write, &answer).await?;
        }
    }

    fn not_an_owner(&self, uid: u32) -> String {
        let owners: Vec<&str> = self.leases.iter().map(|l| l.user.as_str()).collect();
        format!(
            "uid {uid} is not an owner of this helper (it serves {}); run `sudo banger system install --owner <you>`",
            owners.join(", ")
        )
    }

    async fn answer(&self, lease: &Lease, line: &[u8]) -> Answer {
        let request = match serde_json::from_slice::<Request>(line) {
            Ok(request) => request,
            Err(e) => return refuse(lease.uid, format!("not a request: {e}")),
        };
        let op = match request {
            Request::Hello => {
                return Answer::Welcome(Welcome {
                    version: env!("CARGO_PKG_VERSION").into(),
                    uid: lease.uid,
                    bridge: lease.bridge.clone(),
                    subnet: lease.subnet.to_string(),
                    owners: self.leases.iter().map(|l| l.user.clone()).collect(),
                })
            }
            Request::Perform { op } => op,
        };
        let op = match policy::check(lease, self.world.as_ref(), op).await {
            Ok(op) => op,
            Err(denied) => return refuse(lease.uid, denied.to_string()),
        };
        let _one = self.one_at_a_time.lock().await;
        if op == Op::ListNat {
            // Only the caller's own rules are its business.
            return match self.world.tagged_rules().await {
                Ok(rules) => Answer::Done {
                    outcome: Outcome::NatTags(policy::visible_tags(lease, &rules)),
                },
                Err(e) => failed(lease.uid, &op, &e),
            };
        }
        match self.net.perform(&op).await {
            Ok(outcome) => {
                tracing::info!(uid = lease.uid, op = ?op, "performed");
                Answer::Done { outcome }
            }
            Err(e) => failed(lease.uid, &op, &e),
        }
    }
}

fn refuse(uid: u32, reason: String) -> Answer {
    tracing::warn!(uid, reason, "refused");
    Answer::Refused { reason }
}

fn failed(uid: u32, op: &Op, e: &banger_host::HostError) -> Answer {
    let error = banger_api::error::chain(e);
    tracing::error!(uid, op = ?op, error, "failed");
    Answer::Failed { error }
}

async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    answer: &Answer,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(answer).expect("answers serialise");
    line.push(b'\n');
    write.write_all(&line).await
}
