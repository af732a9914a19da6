//! What a build is asked to make.

use std::path::PathBuf;

use crate::sources::Source;

#[derive(Debug)]
pub struct BuildRequest {
    pub name: String,
    /// Contents of the package manifest (the source's format).
    pub packages: String,
    /// Where finished images live: the image goes to `images_dir/<name>`.
    pub images_dir: PathBuf,
    /// Raw output of the helper tools.
    pub log: PathBuf,
    /// Size of the root filesystem image; just enough for the tree when absent.
    pub size: Option<u64>,
    /// The guest agent binary to install as a service.
    pub agent: PathBuf,
    /// npm registry for the tools the distributions do not package (mise, opencode).
    pub npm_registry: String,
    /// Where downloads are kept between builds.
    pub download_cache: PathBuf,
    /// Where the tree comes from.
    pub source: Box<dyn Source>,
}
