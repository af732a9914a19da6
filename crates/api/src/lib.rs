//! The contract between banger's clients (CLI, TUI) and `bangerd`.
//!
//! Everything that crosses the daemon socket is defined here, so both sides
//! agree on one set of types. The API is versioned by path prefix
//! ([`API_PREFIX`]); a breaking change gets a new prefix.
//!
//! - [`vm`], [`vmm`], [`image`], [`status`], [`runtime`] — the resources and requests
//! - [`error`] — the error body every failed call returns
//! - [`events`] — progress of long operations
//! - [`files`] — the layout of a VM's directory
//! - [`paths`] — where banger keeps things (XDG)
//! - [`names`], [`size`], [`stamp`] — names, sizes and timestamps as written
//! - [`agent`] — the protocol of the guest agent

pub mod agent;
pub mod error;
pub mod events;
pub mod files;
pub mod forward;
pub mod image;
pub mod names;
pub mod paths;
pub mod runtime;
pub mod size;
pub mod stamp;
pub mod status;
pub mod vm;
pub mod vmm;

pub use error::{ApiError, ErrorCode};
pub use events::{Event, Progress};
pub use forward::{Forward, ForwardRef, Proto};
pub use image::{BuildImageRequest, Image, RegisterImageRequest};
pub use runtime::{BundleManifest, FetchRuntimeRequest, RuntimeInfo};
pub use size::{format_size, parse_size, SizeError};
pub use status::{
    Check, CheckStatus, DaemonStatus, NetworkAuthority, VmPort, VmStats, VmmMetrics, VmmStatus,
};
pub use vm::{
    Accel, CloneVmRequest, CreateVmRequest, KillRequest, MacAddr, PruneRequest, SshConfig,
    SshTarget, UpdateVmRequest, Vm, VmState, VmmKind,
};

/// Path prefix of every API route.
pub const API_PREFIX: &str = "/v1";
