//! Why a VM operation failed: one variant per failure a caller can act on.
//! The server turns each into an API error with its code and hint.

use banger_api::names::NameError;
use banger_api::{SizeError, VmState};
use banger_client::agent::Unusable;
use banger_host::HostError;
use banger_store::vms::RefError;
use banger_store::StoreError;
use banger_vmm::VmmError;

use crate::caps::CapError;
use crate::config::ConfigError;
use crate::drivers::DriverError;
use crate::images::ImageError;
use crate::journal::JournalError;

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Vmm(#[from] VmmError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Cap(#[from] CapError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Ref(#[from] RefError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Agent(#[from] Unusable),
    #[error(transparent)]
    Forward(#[from] crate::caps::forward::ForwardError),
    #[error("--disk-size is not a size")]
    DiskSize(#[source] SizeError),

    #[error("--vcpu {vcpu} is out of range")]
    VcpuRange { vcpu: u32, max: u32 },
    #[error("--memory {0} MiB is out of range")]
    MemoryRange(u32),
    #[error("--disk-size must be at least 64M")]
    DiskTooSmall,
    #[error("a VM named {0:?} already exists")]
    NameTaken(String),
    #[error("no free guest address left in {0}")]
    NoFreeAddress(String),
    #[error("image {0} was deleted while this VM was being created")]
    ImageDeleted(String),
    #[error("image {image} of VM {vm} no longer exists")]
    ImageGone { vm: String, image: String },
    #[error("image {image} is missing {}", .path.display())]
    ImageFileMissing {
        image: String,
        path: std::path::PathBuf,
    },
    /// A VMM left from a stop that could not finish still runs on the disks.
    #[error("VM {vm} still has a VMM process running (pid {pid})")]
    VmmStillRunning { vm: String, pid: u32 },
    #[error("the VMM exited while the guest was booting; its log: {vmm_log}; console: {console}")]
    ExitedWhileBooting { vmm_log: String, console: String },
    #[error("the guest was not ready within {seconds}s (no answer from {waited_for}); console: {console}")]
    NotReady {
        seconds: u64,
        waited_for: String,
        console: String,
    },
    #[error("VM {0} was deleted meanwhile")]
    DeletedMeanwhile(String),
    #[error("VM {vm} cannot start: {reason}")]
    StillCreating { vm: String, reason: String },
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),
    #[error("VM {vm} is {state}: there is no VMM process to signal")]
    NoProcess { vm: String, state: VmState },
    /// vCPU, memory and disk size change only while stopped.
    #[error("VM {vm} is {state}: vCPU, memory and disk size change only on a stopped VM")]
    NotStopped { vm: String, state: VmState },
    #[error("the work disk only grows: {vm} has {current}, {asked} would shrink it")]
    DiskShrink {
        vm: String,
        current: String,
        asked: String,
    },
    #[error("VM {vm} is {state}, not suspended: there is no saved state to resume")]
    NotSuspended { vm: String, state: VmState },
    /// Stopping a suspended VM would throw its processes away.
    #[error(
        "VM {vm} is suspended: stopping it would discard its saved memory and every process in it"
    )]
    Suspended { vm: String },
    #[error("the saved state of VM {vm} cannot be resumed: {reason}")]
    SavedStateUnusable { vm: String, reason: String },
    #[error("VM {vm} is {state}: a VM is cloned while it runs or when it is stopped")]
    CloneNeedsStopped { vm: String, state: VmState },
    /// A running VM is cloned through its agent (the clone takes its own
    /// identity before it may reach the network).
    #[error("VM {vm} runs an image without the guest agent: it can be cloned only when stopped")]
    CloneNeedsAgent { vm: String },
    /// The restored clone did not take its own identity.
    #[error(
        "{vm}, restored from another guest's memory, could not take its own identity: {reason}"
    )]
    Takeover { vm: String, reason: String },
    /// The image was deleted or rebuilt while its template was made.
    #[error("image {image} changed while its warm template was made; the template was dropped")]
    ImageChanged { image: String },
    /// The operation needs a running VM.
    #[error("VM {vm} is {state}, not running: {what}")]
    NotRunning {
        vm: String,
        state: VmState,
        what: &'static str,
    },
}

pub type Result<T> = std::result::Result<T, VmError>;
