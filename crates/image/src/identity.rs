//! What identifies a build's output, and the finished image it describes:
//! an unchanged request (and builder) means the cached image is still right.

use std::path::Path;

use banger_api::Image;
use sha2::{Digest, Sha256};

use crate::download::hex;
use crate::packages::parse_packages;
use crate::{BuildError, BuildRequest};

/// Bumped whenever the pipeline changes what it produces.
const BUILDER_VERSION: &str = "banger-image-builder 3";

/// The files every finished image directory has.
const IMAGE_FILES: &[&str] = &["rootfs.ext4", "vmlinux", "initrd.img", "work-seed"];

/// The build's identity: the builder, the package list, the shared setup,
/// the source's own identity, the agent it carries, and the size when one
/// was asked for.
pub fn request_sha256(request: &BuildRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(BUILDER_VERSION);
    for p in parse_packages(&request.packages) {
        hasher.update(p);
        hasher.update("\n");
    }
    hasher.update(crate::setup::identity());
    hasher.update(request.source.identity());
    let agent = std::fs::read(&request.agent)
        .map(|bytes| hex(&Sha256::digest(bytes)))
        .unwrap_or_default();
    hasher.update(format!("agent={agent}"));
    if let Some(size) = request.size {
        hasher.update(format!("size={size}"));
    }
    hex(&hasher.finalize())
}

/// The image a finished directory holds.
pub(crate) fn image_record(
    name: &str,
    dir: &Path,
    sha: &str,
    agent: &Path,
) -> Result<Image, BuildError> {
    let version = std::fs::read_to_string(dir.join("kernel-version")).map_err(|source| {
        BuildError::Incomplete {
            name: name.to_string(),
            source,
        }
    })?;
    let created = std::fs::metadata(dir.join("manifest.sha256"))
        .and_then(|m| m.modified())
        .map(time::OffsetDateTime::from)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    Ok(Image {
        name: name.to_string(),
        managed: true,
        rootfs: dir.join("rootfs.ext4"),
        kernel: dir.join("vmlinux"),
        initrd: dir.join("initrd.img"),
        kernel_version: version.trim().to_string(),
        work_seed: Some(dir.join("work-seed")),
        packages_sha256: sha.to_string(),
        created_at: created,
        // Every build installs the agent.
        agent: true,
        agent_serial: crate::setup::agent_speaks_serial(agent),
        warm: false,
    })
}

/// The finished image for this request, if one was built before.
pub fn cached_image(request: &BuildRequest) -> Option<Image> {
    let dir = request.images_dir.join(&request.name);
    let want = request_sha256(request);
    let have = std::fs::read_to_string(dir.join("manifest.sha256")).ok()?;
    let complete = IMAGE_FILES.iter().all(|f| dir.join(f).exists());
    (have.trim() == want && complete)
        .then(|| image_record(&request.name, &dir, &want, &request.agent).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::debian::Debian;

    fn request(packages: &str, suite: &str, size: Option<u64>) -> BuildRequest {
        BuildRequest {
            name: "x".into(),
            packages: packages.into(),
            images_dir: "/nonexistent".into(),
            log: "/nonexistent/log".into(),
            size,
            agent: "/nonexistent/banger-agent".into(),
            npm_registry: crate::tools::DEFAULT_REGISTRY.into(),
            download_cache: "/nonexistent/cache".into(),
            source: Box::new(Debian::new(None, suite).unwrap()),
        }
    }

    #[test]
    fn the_identity_follows_the_package_list_suite_and_size() {
        let a = request_sha256(&request("curl\ngit\n", "bookworm", None));
        assert_eq!(
            a,
            request_sha256(&request("# comment\ncurl\ngit", "bookworm", None))
        );
        assert_ne!(a, request_sha256(&request("curl\n", "bookworm", None)));
        assert_ne!(a, request_sha256(&request("curl\ngit\n", "trixie", None)));
        let sized = request_sha256(&request("curl\ngit\n", "bookworm", Some(4 << 30)));
        assert_ne!(a, sized);
        assert_ne!(
            sized,
            request_sha256(&request("curl\ngit\n", "bookworm", Some(8 << 30)))
        );
    }
}
