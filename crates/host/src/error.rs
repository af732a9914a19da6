//! What can go wrong on the host. Messages name the failure; an underlying
//! error is its `source`, never repeated in the message (show the whole
//! chain with [`banger_api::error::chain`]).

use std::path::PathBuf;

use crate::privileged::Refusal;

/// Where the root helper listens unless configured otherwise.
pub const DEFAULT_HELPER_SOCKET: &str = "/run/banger/helper.sock";

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A required program is not installed.
    #[error("required tool `{tool}` was not found in PATH")]
    MissingTool {
        tool: String,
        package: Option<&'static str>,
    },
    /// An external command exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A signal could not be delivered (not permitted, say).
    #[error("cannot send {signal} to process {pid}")]
    Signal {
        pid: u32,
        signal: nix::sys::signal::Signal,
        #[source]
        source: nix::errno::Errno,
    },
    /// A process outlived SIGKILL (stuck in the kernel).
    #[error("process {pid} did not exit after SIGKILL")]
    Unkillable { pid: u32 },
    /// A detached program ended before it could be identified.
    #[error("{} exited as soon as it started; see {}", .program.display(), .log.display())]
    ExitedAtStart { program: PathBuf, log: PathBuf },
    /// A work seed image does not fit the disk asked for.
    #[error("the work seed {} ({seed_size} bytes) is larger than the disk asked for ({size} bytes)", .seed.display())]
    SeedTooLarge {
        seed: PathBuf,
        seed_size: u64,
        size: u64,
    },
    /// A privileged operation whose arguments are not what it expects.
    #[error("refused privileged operation")]
    Refused(#[from] Refusal),
    /// The root helper does not answer (not running, or not here).
    #[error("the root helper at {} does not answer", .socket.display())]
    NoHelper {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The root helper would not perform the operation.
    #[error("the root helper refused: {reason}")]
    HelperRefused { reason: String },
    /// The root helper tried and the host said no.
    #[error("the root helper failed: {error}")]
    HelperFailed { error: String },
}

impl HostError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> HostError {
        HostError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn path_io(what: &str, path: &std::path::Path, source: std::io::Error) -> HostError {
        HostError::io(format!("{what} {}", path.display()), source)
    }

    /// The fix a user should apply, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            HostError::MissingTool {
                tool,
                package: Some(pkg),
            } => Some(format!(
                "install it with `apt-get install {pkg}` (it provides {tool}), then retry"
            )),
            HostError::MissingTool {
                tool,
                package: None,
            } => Some(format!("install {tool} and make sure it is in PATH")),
            HostError::NoHelper { socket, .. } => Some(format!(
                "start it once: `sudo banger system install --owner $USER` (or, without systemd, `sudo banger-helper --owner $USER{}`)",
                if socket.as_os_str() == DEFAULT_HELPER_SOCKET { String::new() } else { format!(" --socket {}", socket.display()) }
            )),
            HostError::SeedTooLarge { .. } => {
                Some("pass a --disk-size at least as large as the image's work seed".into())
            }
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, HostError>;
