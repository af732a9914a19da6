//! What VMs and builds need on disk: tools, the runtime bundle, the
//! default image, free space.

use std::path::Path;

use banger_api::{Check, CheckStatus};
use banger_host::tools;
use banger_image::Origin;

use super::{check, Inputs};
use crate::vms::create::VM_TOOLS;

fn tool_check(tool: &str, needed_for: &str, missing: CheckStatus) -> Check {
    match tools::require(tool) {
        Ok(path) => check(
            &format!("tool {tool}"),
            CheckStatus::Pass,
            path.display().to_string(),
            None,
        ),
        Err(err) => check(
            &format!("tool {tool}"),
            missing,
            format!("{err} (needed for {needed_for})"),
            err.hint(),
        ),
    }
}

pub fn checks(inputs: &Inputs<'_>) -> Vec<Check> {
    let config = inputs.config;
    let mut checks: Vec<Check> = VM_TOOLS
        .iter()
        .map(|tool| tool_check(tool, "VMs", CheckStatus::Fail))
        .collect();

    let location = banger_runtime::resolve::locate_here(config.runtime_dir.clone());
    checks.push(match banger_runtime::Bundle::open(&location.dir) {
        Ok(bundle) => check(
            "runtime bundle",
            CheckStatus::Pass,
            format!(
                "{} ({}; kernel {})",
                bundle.dir.display(),
                location.source,
                bundle.manifest.kernel_version
            ),
            None,
        ),
        Err(_) if !location.dir.exists() => check(
            "runtime bundle",
            CheckStatus::Pass,
            format!(
                "none at {} ({}); the default image is built from Debian's mirror",
                location.dir.display(),
                location.source
            ),
            None,
        ),
        Err(e) => check(
            "runtime bundle",
            CheckStatus::Fail,
            banger_api::error::chain(&e),
            Some(
                "reinstall it with `banger runtime fetch --manifest FILE`, or remove the directory"
                    .into(),
            ),
        ),
    });

    let image = inputs.images_dir.join(&config.default_image);
    let built = image.join("manifest.sha256").exists();
    checks.push(if built {
        let kernel = std::fs::read_to_string(image.join("kernel-version")).unwrap_or_default();
        check("default image", CheckStatus::Pass, format!("{} (kernel {})", image.display(), kernel.trim()), None)
    } else {
        check(
            "default image",
            CheckStatus::Warn,
            format!("not built yet ({})", image.display()),
            Some("the first `banger vm create` builds it (about a minute, needs Debian's mirror), or run `banger image build --name default`".into()),
        )
    });
    for tool in Origin::Debian.profile().tools {
        checks.push(tool_check(
            tool,
            "image builds",
            if built {
                CheckStatus::Warn
            } else {
                CheckStatus::Fail
            },
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        checks.push(tool_check(
            "newuidmap",
            "image builds as a user",
            if built {
                CheckStatus::Warn
            } else {
                CheckStatus::Fail
            },
        ));
        checks.push(subordinate_ids(
            &std::fs::read_to_string("/etc/subuid").unwrap_or_default(),
            &std::fs::read_to_string("/etc/subgid").unwrap_or_default(),
            built,
        ));
    }
    checks.push(disk_space(&inputs.paths.state_dir));
    checks
}

/// Image builds as a user map its subordinate ids to the tree's owners.
fn subordinate_ids(subuid: &str, subgid: &str, built: bool) -> Check {
    let uid = nix::unistd::geteuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string());
    let has = |text: &str| {
        text.lines().any(|l| {
            l.split(':')
                .next()
                .is_some_and(|who| who == name || who == uid.to_string())
        })
    };
    if has(subuid) && has(subgid) {
        check(
            "subordinate ids",
            CheckStatus::Pass,
            format!("{name} has ranges in /etc/subuid and /etc/subgid (image builds as you)"),
            None,
        )
    } else {
        check(
            "subordinate ids",
            if built { CheckStatus::Warn } else { CheckStatus::Fail },
            format!("{name} has no range in /etc/subuid or /etc/subgid: image builds as you cannot map the image's users"),
            Some(format!("`sudo banger system install --owner {name}` adds one (or `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name}`)")),
        )
    }
}

fn disk_space(state_dir: &Path) -> Check {
    // The state dir may not exist yet: look at the nearest existing parent.
    let existing = state_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let stat = match nix::sys::statvfs::statvfs(existing) {
        Ok(stat) => stat,
        Err(e) => {
            return check(
                "disk space",
                CheckStatus::Warn,
                format!("cannot stat {}: {e}", existing.display()),
                None,
            )
        }
    };
    let free = stat.blocks_available() * stat.fragment_size();
    let detail = format!(
        "{} free under {}",
        banger_api::format_size(free),
        existing.display()
    );
    if free < 2 << 30 {
        check(
            "disk space",
            CheckStatus::Fail,
            detail,
            Some("free space: an image needs ~1 GiB and each VM's disks grow as used".into()),
        )
    } else if free < 10 << 30 {
        check(
            "disk space",
            CheckStatus::Warn,
            detail,
            Some("VM disks are sparse but grow with use".into()),
        )
    } else {
        check("disk space", CheckStatus::Pass, detail, None)
    }
}
