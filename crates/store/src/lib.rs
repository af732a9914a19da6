//! State that must survive daemon restarts, in one SQLite file.
//!
//! Besides VMs and images, the store keeps a *journal of host resources*:
//! every directory, file, TAP device and process the daemon creates for a VM
//! is recorded here **before** it is created and forgotten only after it is
//! gone. A failed or interrupted operation can therefore always be rolled
//! back, and the daemon reconciles the journal against reality at start.

mod db;
mod forwards;
mod images;
mod kernels;
mod migrations;
mod resource;
mod resources;
pub mod vms;

pub use db::{RefError, Result, Store, StoreError};
pub use resource::{Resource, ResourceKind};
