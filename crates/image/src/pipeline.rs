//! The build pipeline, the same for every source: bootstrap the tree, add
//! what every image gets, the source's init setup, the kernel, pack. It is
//! staged in a directory beside the final one and renamed into place only
//! when complete, so an interrupted build never leaves a half image behind.

use std::path::Path;
use std::sync::Arc;

use banger_api::{Image, Progress};
use banger_host::runner::Runner;
use banger_host::HostError;

use crate::fsutil::{create_dir, remove_tree};
use crate::identity::{cached_image, image_record, request_sha256};
use crate::progress::Say;
use crate::sources::Cx;
use crate::{pack, setup, BuildError, BuildRequest};

/// Roughly what a build needs at its peak: the tree (with the npm tools)
/// and the ext4 image packed from it, side by side.
pub const NEEDED_FREE: u64 = 2 << 30;

/// Builds (or reuses) the image. `progress` hears every stage.
pub async fn build_image(
    runner: Arc<dyn Runner>,
    request: &BuildRequest,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Image, BuildError> {
    let say = |stage: &str, message: String, fraction: f32| {
        progress(Progress {
            stage: stage.into(),
            message,
            fraction: Some(fraction),
        })
    };
    if let Some(image) = cached_image(request) {
        say(
            "image.cached",
            format!("image {} is up to date", request.name),
            1.0,
        );
        return Ok(image);
    }
    let sha = request_sha256(request);
    let final_dir = request.images_dir.join(&request.name);
    let stage = request
        .images_dir
        .join(format!(".{}.build-{}", request.name, std::process::id()));
    create_dir(&request.images_dir)?;
    check_space(&request.images_dir)?;
    if let Some(parent) = request.log.parent() {
        create_dir(parent)?;
    }
    // The log is this build's: errors quoted from it must not be an older one's.
    std::fs::write(&request.log, b"")
        .map_err(|e| HostError::path_io("cannot write", &request.log, e))?;
    let _ = remove_tree(runner.as_ref(), &stage).await;
    create_dir(&stage)?;
    match build_into(runner.clone(), request, &stage, &sha, &say).await {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&final_dir);
            std::fs::rename(&stage, &final_dir)
                .map_err(|e| HostError::path_io("cannot move image into", &final_dir, e))?;
            say(
                "image.done",
                format!("image {} is ready", request.name),
                1.0,
            );
            image_record(&request.name, &final_dir, &sha, &request.agent)
        }
        Err(err) => {
            // A failed build can leave a whole distribution tree behind.
            if let Err(e) = remove_tree(runner.as_ref(), &stage).await {
                tracing::warn!(error = %banger_api::error::chain(&e), stage = %stage.display(), "cannot remove a failed build's tree");
            }
            let errors = error_lines(&request.log);
            Err(BuildError::Failed {
                name: request.name.clone(),
                log: request.log.clone(),
                last_errors: (!errors.is_empty()).then_some(errors),
                disk_full: disk_filled_up(&err, &request.log),
                source: Box::new(err),
            })
        }
    }
}

async fn build_into(
    runner: Arc<dyn Runner>,
    request: &BuildRequest,
    stage: &Path,
    sha: &str,
    say: &Say<'_>,
) -> Result<(), BuildError> {
    let rootdir = stage.join("rootdir");
    let cx = Cx {
        runner: &runner,
        log: &request.log,
        stage,
        packages: &request.packages,
        download_cache: &request.download_cache,
        say,
    };
    // The tools download while the distribution is bootstrapped.
    let downloads =
        setup::download_tools(request.npm_registry.clone(), request.download_cache.clone());
    let bootstrapped = request.source.bootstrap(&cx, &rootdir).await;
    if let Err(err) = bootstrapped {
        downloads.abort();
        return Err(err);
    }
    setup::install_tools(downloads, &rootdir, say).await?;

    say(
        "image.configure",
        "configuring the root filesystem for banger".into(),
        0.72,
    );
    setup::configure_rootfs(&rootdir)
        .and_then(|()| setup::install_agent(&rootdir, &request.agent))
        .and_then(|()| request.source.configure(&rootdir))
        .map_err(BuildError::Configure)?;
    setup::check_agent_runs(runner.as_ref(), &rootdir, &request.agent).await?;
    request.source.kernel(&cx, &rootdir).await?;
    pack::pack(runner.as_ref(), request, stage, &rootdir, sha, say).await
}

/// Refuses to start a build that cannot fit, before minutes of work.
fn check_space(dir: &Path) -> Result<(), BuildError> {
    let Ok(stat) = nix::sys::statvfs::statvfs(dir) else {
        return Ok(()); // unknown: let the build try
    };
    let free = stat.blocks_available() * stat.fragment_size();
    if free < NEEDED_FREE {
        return Err(BuildError::NoSpace {
            dir: dir.to_path_buf(),
            free: banger_api::format_size(free),
            needed: banger_api::format_size(NEEDED_FREE),
        });
    }
    Ok(())
}

/// Whether a failed build ran out of disk (ENOSPC in the error or in what
/// the helper tools logged).
fn disk_filled_up(error: &BuildError, log: &Path) -> bool {
    const ENOSPC: &str = "No space left on device";
    banger_api::error::chain(error).contains(ENOSPC)
        || std::fs::read(log)
            .map(|b| String::from_utf8_lossy(&b).contains(ENOSPC))
            .unwrap_or(false)
}

/// The last error lines ("E: ...") a helper tool wrote to the build log.
fn error_lines(log: &Path) -> String {
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("E: ")).collect();
    errors[errors.len().saturating_sub(3)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_recognised_in_the_error_or_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let mmdebstrap = || {
            BuildError::Host(HostError::CommandFailed {
                command: "mmdebstrap".into(),
                status: "exit status: 1".into(),
                stderr: "see the log".into(),
            })
        };
        std::fs::write(
            &log,
            "I: extracting\ntar: ./usr/bin/x: Cannot write: No space left on device\n",
        )
        .unwrap();
        assert!(disk_filled_up(&mmdebstrap(), &log));
        std::fs::write(&log, "E: unable to locate package nope\n").unwrap();
        assert!(!disk_filled_up(&mmdebstrap(), &log));
        let enospc = BuildError::Host(HostError::io(
            "cannot write rootfs.ext4",
            std::io::Error::from_raw_os_error(28),
        ));
        assert!(disk_filled_up(&enospc, &log));
        assert_eq!(error_lines(&log), "E: unable to locate package nope");
    }
}
