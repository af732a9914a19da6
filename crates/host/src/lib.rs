//! Everything banger does *to the host*, each part behind a small trait so
//! the daemon's orchestration can be tested with faults injected.
//!
//! - [`runner`] — running external tools (e2fsprogs, ip, ssh-keygen, ...)
//! - [`tools`] — finding those tools, with install hints when missing
//! - [`process`] — VMM processes that outlive the daemon, and watching them
//! - [`privileged`] — the fixed list of operations that need root
//! - [`net`] — performing them: bridge, TAP devices, NAT rules
//! - [`disk`] — sparse ext4 disks built without mounting anything
//! - [`probe`] — whether a guest is up
//! - [`ssh`] — the installation key pair and per-VM host keys
//! - [`userns`] — tools that must see a tree's true owners, for a daemon
//!   that is not root

pub mod disk;
pub mod error;
pub mod http;
pub mod net;
pub mod privileged;
pub mod probe;
pub mod process;
pub mod runner;
pub mod ssh;
pub mod tools;
pub mod userns;

pub use error::HostError;
