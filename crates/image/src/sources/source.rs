//! The one trait every source implements, what its steps are given, and
//! what a distribution asks of a build before it starts.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use banger_host::runner::Runner;

use crate::progress::Say;
use crate::BuildError;

/// What a source's steps get from the pipeline.
pub struct Cx<'a> {
    pub runner: &'a Arc<dyn Runner>,
    /// Raw output of the helper tools goes here.
    pub log: &'a Path,
    /// The staging directory: the finished image's files go here.
    pub stage: &'a Path,
    /// The package manifest (the source's own format).
    pub packages: &'a str,
    /// Where downloads are kept between builds.
    pub download_cache: &'a Path,
    pub say: &'a Say<'a>,
}

#[async_trait]
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Everything besides the package list that decides what this source
    /// produces: part of the image's cache key.
    fn identity(&self) -> String;

    /// The file name the package manifest is kept under in the image.
    fn manifest_name(&self) -> &'static str;

    /// The distribution's tree in `rootdir`, with the packages installed.
    async fn bootstrap(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError>;

    /// The init system's part of the setup (services, the agent's unit),
    /// after the setup every image shares.
    fn configure(&self, root: &Path) -> std::io::Result<()>;

    /// `vmlinux`, `initrd.img` and `kernel-version` into the stage.
    async fn kernel(&self, cx: &Cx<'_>, rootdir: &Path) -> Result<(), BuildError>;
}

/// What a distribution asks of a build before it starts.
#[derive(Debug)]
pub struct Profile {
    /// The package list when the request names none.
    pub default_packages: &'static str,
    /// What `--docker` adds to it.
    pub docker_packages: &'static [&'static str],
    /// Host tools the build runs (besides the e2fsprogs every build uses).
    pub tools: &'static [&'static str],
    /// Whether the image boots the default image's kernel (which must be
    /// built first, and so cannot be this image).
    pub borrows_default_kernel: bool,
    /// Whether the package list is an apt list (`default_packages_file`
    /// in config.toml is one).
    pub apt_list: bool,
}
