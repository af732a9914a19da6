//! The end of every build: the work seed taken out of the tree, the tree
//! packed into ext4 with `mkfs.ext4 -d` (nothing is mounted), the manifest
//! and the build's identity written beside it.

use std::path::Path;

use banger_host::runner::{Cmd, Runner};
use banger_host::{userns, HostError};

use crate::fsutil::{blocking, remove_tree, set_mode, tree_size, write};
use crate::progress::Say;
use crate::{BuildError, BuildRequest, LABEL_BASE};

pub(crate) async fn pack(
    runner: &dyn Runner,
    request: &BuildRequest,
    stage: &Path,
    rootdir: &Path,
    sha: &str,
    say: &Say<'_>,
) -> Result<(), BuildError> {
    // /root of new VMs starts as a copy of the image's /root.
    let seed = stage.join("work-seed");
    std::fs::rename(rootdir.join("root"), &seed)
        .map_err(|e| HostError::path_io("cannot move", &seed, e))?;
    std::fs::create_dir(rootdir.join("root"))
        .map_err(|e| HostError::io("cannot recreate /root in the tree", e))?;
    set_mode(&rootdir.join("root"), 0o700)?;

    say(
        "image.ext4",
        "packing the root filesystem into ext4 (mkfs.ext4 -d)".into(),
        0.85,
    );
    let dir = rootdir.to_path_buf();
    let used = blocking(move || tree_size(&dir)).await;
    let needed = (used + used / 5 + (128 << 20)).div_ceil(1 << 20) << 20;
    let size = match request.size {
        Some(asked) if asked < needed => {
            return Err(BuildError::TooSmall {
                asked: banger_api::format_size(asked),
                needed: banger_api::format_size(needed),
            })
        }
        Some(asked) => asked,
        None => needed,
    };
    let rootfs = stage.join("rootfs.ext4");
    banger_host::disk::create_sparse(&rootfs, size)?;
    // mkfs records each file's owner: it must see the tree's own.
    let mkfs = Cmd::new("mkfs.ext4")
        .args(["-F", "-q", "-L", LABEL_BASE, "-m", "0", "-d"])
        .arg(rootdir)
        .arg(&rootfs)
        .log_to(&request.log);
    runner
        .run(userns::as_root(mkfs, userns::Map::Subordinate, &[]))
        .await?;
    remove_tree(runner, rootdir).await?;
    write(
        &stage.join(request.source.manifest_name()),
        request.packages.as_bytes(),
    )?;
    write(&stage.join("manifest.sha256"), sha.as_bytes())?;
    Ok(())
}
