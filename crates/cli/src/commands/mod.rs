pub mod daemon;
pub mod doctor;
pub mod image;
pub mod runtime;
pub mod ssh_config;
pub mod system;
pub mod tui;
pub mod vm;
