//! The protocol between the host and `banger-agent` in each guest: HTTP/1.1
//! with JSON bodies over vsock port [`AGENT_PORT`], versioned by path prefix
//! ([`AGENT_PREFIX`]).
//!
//! - `GET  /v1/health` → [`Health`]
//! - `GET  /v1/ports`  → `Vec<`[`Listener`]`>`
//! - `GET  /v1/stats`  → [`GuestStats`]
//! - `POST /v1/exec`   — the command in the `x-banger-exec` header as JSON
//!   ([`ExecRequest`]), stdin as the request body (streamed); the answer is
//!   a stream of JSON lines ([`ExecFrame`]) ending with `exit`; the
//!   `x-banger-exec-pid` header names the command's process group
//! - `POST /v1/exec/{pid}/kill` — ends that command and what it started
//! - `POST /v1/identity` — [`Identity`] → [`IdentityDone`]: a guest restored
//!   from another's memory (a running clone, a warm create) becomes its own

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::MacAddr;

pub const AGENT_PORT: u32 = 1024;
/// QEMU guests the host can save reach the agent over a virtio-serial port
/// of this name instead of vsock (see the `banger-mux` crate)…
pub const SERIAL_PORT_NAME: &str = "org.banger.agent";
/// …and are told so by this kernel argument.
pub const SERIAL_FLAG: &str = "banger.agent=serial";
/// What an agent binary that speaks the serial channel says in its
/// `--version` (so its bytes are in the binary, where an image's agent is
/// looked for them: a compiler may fold a compared constant away).
pub const CHANNELS_MARKER: &str = "banger-agent-channels: vsock serial";

pub const AGENT_PREFIX: &str = "/v1";
pub const EXEC_HEADER: &str = "x-banger-exec";
/// In an exec answer: the command's process group, for `POST /v1/exec/{pid}/kill`.
pub const EXEC_PID_HEADER: &str = "x-banger-exec-pid";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// The agent's version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub uptime_secs: f64,
    /// Changes at every guest boot (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

/// A listening socket in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The address it is bound to (`0.0.0.0`, `::`, `127.0.0.1`, ...).
    pub address: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Short process name (`comm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// Full command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskUse {
    pub path: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestStats {
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub disks: Vec<DiskUse>,
}

impl GuestStats {
    /// Memory in use: what the kernel could not hand to a new program.
    pub fn memory_used_bytes(&self) -> u64 {
        self.memory_total_bytes
            .saturating_sub(self.memory_available_bytes)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    /// The program and its arguments, exactly (no shell).
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: Vec<(String, String)>,
    #[serde(default)]
    pub cwd: Option<String>,
}

/// One line of an exec answer. Output bytes are base64, so binary output
/// survives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "frame", rename_all = "snake_case")]
pub enum ExecFrame {
    Stdout {
        data: String,
    },
    Stderr {
        data: String,
    },
    /// The command could not run (not found, bad cwd, ...).
    Error {
        message: String,
    },
    /// Always last: the exit code (128 + signal when killed by one).
    Exit {
        code: i32,
    },
}

/// Everything a guest restored from another's memory changes to become
/// its own VM, done by the agent itself (no shell: each process costs
/// ~0.1 s in an emulated guest), in this order: the clock, the kernel's
/// RNG (fed and forced to reseed), the files, the machine-id, the
/// hostname, the network interface, the grown filesystems, and sshd
/// told of its new host key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The host's clock when it sent this (seconds and nanoseconds since
    /// the epoch).
    pub now_secs: i64,
    pub now_nanos: u32,
    /// Random bytes from the host (base64), credited to the kernel's pool.
    pub seed: String,
    /// Files replaced whole (absolute paths), owned by root.
    pub files: Vec<IdentityFile>,
    /// 32 lowercase hex digits.
    pub machine_id: String,
    pub hostname: String,
    pub network: Readdress,
    /// Filesystems (by ext4 label) whose disk the host has just grown, to
    /// grow online to the disk's new size.
    #[serde(default)]
    pub grow: Vec<Grow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityFile {
    pub path: String,
    pub mode: u32,
    pub contents: String,
}

/// The interface that has MAC `from_mac` and address `from_address` takes
/// `mac` and `address`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readdress {
    pub from_mac: MacAddr,
    pub from_address: Ipv4Addr,
    pub mac: MacAddr,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grow {
    pub label: String,
    /// The disk's new size: the agent waits until the guest's kernel sees it.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityDone {
    /// How long each step took, in order (step name, milliseconds).
    pub steps: Vec<(String, u64)>,
}
