pub mod daemon;
pub mod doctor;
pub mod image;
pub mod vm;
