//! Test doubles. [`doubles`] holds in-process fakes of host integrations;
//! the main one is a fake Firecracker (`fake-firecracker`):
//! Firecracker cannot run on machines without hardware KVM, so the driver
//! is tested against a process that speaks its API socket and checks every
//! request against `firecracker-api.yaml` (the real spec, v1.16.1), failing
//! the test on any mismatch.

pub mod doubles;
pub mod spec;

/// The Firecracker API spec the client and the fake are held to.
pub const FIRECRACKER_SPEC: &str = include_str!("../../vmm/firecracker-api.yaml");
