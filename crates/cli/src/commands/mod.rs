pub mod daemon;
pub mod image;
pub mod vm;
