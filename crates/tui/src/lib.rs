//! `banger tui`: every VM and image at a glance, the common actions one key
//! away. A client of bangerd's API like the CLI.
//!
//! - [`fleet`] — what the TUI asks of the daemon (a trait, so tests use a fake)
//! - [`model`] — everything on screen, and how messages change it
//! - [`keys`] — keys to model changes and actions
//! - [`ui`] — drawing the model with ratatui (pure: no I/O)
//! - [`actions`] — running actions in the background, reporting progress
//! - [`run`] — the terminal loop: refresh, keys, SSH hand-over
//! - [`foreground`] — handing the terminal to a child (ssh)

pub mod actions;
pub mod fleet;
pub mod foreground;
pub mod keys;
pub mod model;
pub mod run;
pub mod ui;

pub use run::{run, Options};
