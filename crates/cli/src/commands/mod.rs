pub mod daemon;
pub mod doctor;
pub mod image;
pub mod runtime;
pub mod system;
pub mod tui;
pub mod vm;
