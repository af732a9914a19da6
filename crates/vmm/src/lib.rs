//! Virtual machine monitors. The daemon sees only [`Vmm`]; each driver turns
//! a [`VmSpec`] into a running guest and asks it to shut down.
//!
//! - [`firecracker`] — the primary driver, a typed client of Firecracker's API
//!   (`firecracker-api.yaml` in this crate, v1.16.1).
//! - [`qemu`] — `qemu-system-x86_64` with the microvm machine, KVM when the
//!   host can run ordinary guests, software emulation (TCG) otherwise.

pub mod firecracker;
pub mod kvm;
pub mod qemu;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use banger_api::files::{tail_summary, VmFiles};
use banger_api::{Accel, VmmKind, VmmMetrics, VmmStatus};
use banger_host::process::ProcessId;
use banger_host::HostError;

/// One disk of a guest, in the order the guest sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveSpec {
    pub id: String,
    pub path: PathBuf,
    pub read_only: bool,
}

/// Everything a driver needs to boot a guest.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub id: String,
    /// The VM's own directory: sockets and logs go here.
    pub dir: PathBuf,
    pub vcpu: u32,
    pub memory_mib: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Kernel command line; drivers append what their machine needs.
    pub cmdline: String,
    pub drives: Vec<DriveSpec>,
    pub tap: String,
    pub mac: banger_api::MacAddr,
    /// Whether the guest gets a vsock device: its image has the agent,
    /// which is what listens on it. (QEMU cannot save a guest with its
    /// vhost-user vsock, so a guest that needs none goes without.)
    pub vsock: bool,
    /// The image's agent can also use a virtio-serial port (QEMU gives it
    /// one instead of vsock: a guest with it can be saved).
    pub serial_agent: bool,
}

impl VmSpec {
    /// The files of the VM's directory (console, vsock socket, disks).
    pub fn files(&self) -> VmFiles {
        VmFiles::new(&self.dir)
    }
}

/// Each VM has its own vsock device: the guest's CID only has to be valid (≥ 3).
pub const GUEST_CID: u32 = 3;

/// Which process a driver just started, so the daemon journals each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The VMM itself: its exit is the VM's exit.
    Vmm,
    /// A helper that serves a device for the VMM (QEMU's vhost-user vsock).
    Helper,
}

#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error(transparent)]
    Host(#[from] HostError),
    /// The VMM process ended before it served its control socket.
    #[error("the VMM exited during start-up: {log}")]
    ExitedAtStart { log: String },
    /// The VMM runs but never opened its control socket.
    #[error("the VMM did not open {} within {timeout:?}", .socket.display())]
    NoSocket { socket: PathBuf, timeout: Duration },
    /// Firecracker refused (or did not answer) a configuration request.
    #[error("firecracker did not accept the VM's configuration; its log: {log}")]
    Configure {
        #[source]
        source: firecracker::FirecrackerError,
        log: String,
    },
    /// QEMU's vsock helper did not come up.
    #[error("the vsock helper {} did not start: {log}", .helper.display())]
    Helper { helper: PathBuf, log: String },
    /// The guest could not be asked to shut down (QMP or Firecracker's API).
    #[error("cannot ask the guest to shut down")]
    Shutdown(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The VMM did not say what it runs (its API or QMP did not answer).
    #[error("cannot read the VMM's status")]
    Query(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The VMM refuses to save this guest at all (QEMU: a device that does
    /// not migrate). Nothing was paused or written.
    #[error("{vmm} cannot save this guest: {reason}")]
    CannotSave { vmm: VmmKind, reason: String },
    /// Pausing or writing the guest's state failed.
    #[error("the VMM could not save the guest's state: {reason}")]
    Save { reason: String },
    /// The running VMM would not grow a disk.
    #[error("the VMM could not grow disk {drive}: {reason}")]
    Grow { drive: String, reason: String },
    /// A new VMM could not continue the saved guest.
    #[error("the VMM could not restore the saved guest: {reason}; its log: {log}")]
    Restore { reason: String, log: String },
}

impl VmmError {
    /// The fix a user should apply, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            VmmError::Host(e) => e.hint(),
            VmmError::Helper { .. } => Some(
                "reinstall it (`cargo install vhost-device-vsock`) or remove it from PATH / vsock_helper_bin to run guests without an agent channel".into(),
            ),
            VmmError::CannotSave {
                vmm: VmmKind::Qemu, ..
            } => Some(
                "QEMU cannot migrate its vhost-user vsock device, so a QEMU guest with the agent channel cannot be suspended: use `vmm = \"firecracker\"` where KVM runs it, or stop the VM instead".into(),
            ),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, VmmError>;

#[async_trait]
pub trait Vmm: Send + Sync {
    fn kind(&self) -> VmmKind;

    /// How it runs guests here.
    fn accel(&self) -> Accel;

    /// Starts the VMM process (and any helper it needs) and boots the guest.
    /// `spawned` is called with each process's identity as soon as it
    /// exists, so the caller can journal it. Every process a driver starts
    /// has the VM directory on its command line (crash recovery finds an
    /// unjournaled one by it). On error nothing of this launch is left running.
    async fn launch(
        &self,
        spec: &VmSpec,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId>;

    /// Asks the guest to shut down; the process exits once it has.
    async fn request_shutdown(&self, dir: &Path, process: ProcessId) -> Result<()>;

    /// What the running VMM of the VM in `dir` says of itself, asked live.
    async fn status(&self, dir: &Path) -> Result<VmmStatus>;

    /// The counts the VMM keeps for its guest since it started, where it
    /// keeps any (Firecracker's metrics; QEMU has none to offer).
    async fn metrics(&self, dir: &Path) -> Result<Option<VmmMetrics>>;

    /// Pauses the guest and writes its memory and device state into the
    /// empty directory `into`. The VMM stays, paused; the caller ends it
    /// (or [`Vmm::unpause`]s it when the save is abandoned).
    async fn save(&self, dir: &Path, into: &Path) -> Result<()>;

    /// Lets a paused guest run: one whose save was abandoned, or one just
    /// restored.
    async fn unpause(&self, dir: &Path) -> Result<()>;

    /// Tells the running guest that the writable disk `drive` (its id in
    /// the spec, backed by `path`) now has `bytes` bytes, growing the file
    /// first: a restored guest's disks cannot be grown behind its back.
    /// The guest's filesystem is grown from inside it.
    async fn grow_disk(&self, dir: &Path, drive: &str, path: &Path, bytes: u64) -> Result<()>;

    /// Starts a new VMM holding the guest saved in `from`, on the spec's
    /// TAP and vsock socket, paused: [`Vmm::unpause`] lets it run. The same
    /// contract as [`Vmm::launch`] otherwise.
    async fn restore(
        &self,
        spec: &VmSpec,
        from: &Path,
        spawned: &(dyn Fn(Role, ProcessId) + Send + Sync),
    ) -> Result<ProcessId>;
}

/// The lines of a VMM's own output that say why it stopped, for a stop
/// reason or a failed boot: each driver knows where it writes them.
pub fn log_summary(kind: VmmKind, dir: &Path) -> String {
    match kind {
        VmmKind::Firecracker => firecracker::log_summary(dir),
        VmmKind::Qemu => tail_summary(&qemu::Qemu::log_path(dir), 3),
    }
}

/// Keeps the previous boot's copy of a log as `<name>.1` so each boot's
/// file holds that boot only (Firecracker writes its logger and metrics
/// files from the start without truncating them, so old bytes would
/// otherwise trail the new ones).
pub(crate) fn rotate(path: &Path) {
    if path.exists() {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        let _ = std::fs::rename(path, old);
    }
}

/// Waits until `socket` accepts connections, failing early if the process dies.
pub(crate) async fn wait_for_socket(
    socket: &Path,
    process: ProcessId,
    timeout: Duration,
    log: &Path,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Ok(());
        }
        if !process.is_alive() {
            return Err(VmmError::ExitedAtStart {
                log: tail_summary(log, 5),
            });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(VmmError::NoSocket {
                socket: socket.to_path_buf(),
                timeout,
            });
        }
        // The socket appears a few milliseconds after the process starts
        // (3 ms for Firecracker here); a connect attempt costs microseconds.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
