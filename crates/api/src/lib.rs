//! The contract between banger's clients (CLI, TUI) and `bangerd`.
//!
//! Everything that crosses the daemon socket is defined here, so both sides
//! agree on one set of types. The API is versioned by path prefix
//! ([`API_PREFIX`]); a breaking change gets a new prefix.

pub mod agent;
pub mod error;
pub mod events;
pub mod names;
pub mod paths;
pub mod types;

pub use error::{ApiError, ErrorCode};
pub use events::{Event, Progress};
pub use types::*;

/// Path prefix of every API route.
pub const API_PREFIX: &str = "/v1";
