//! `banger system install|uninstall`: the helper's systemd unit, a user
//! unit for the daemon, and subordinate id ranges for owners who have none
//! (unprivileged image builds need them). Every change is recorded in a
//! manifest first, so uninstall undoes exactly what install did, and a
//! second install (another owner) adds to the first.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where the record of an installation lives, under the install root.
pub const MANIFEST: &str = "etc/banger/helper-install.json";
pub const HELPER_UNIT: &str = "etc/systemd/system/banger-helper.service";
pub const DAEMON_USER_UNIT: &str = "etc/systemd/user/bangerd.service";
/// How many subordinate ids an owner gets (what `useradd` gives).
pub const SUBID_COUNT: u32 = 65536;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub owners: Vec<String>,
    /// Lines this installation added to /etc/subuid and /etc/subgid.
    #[serde(default)]
    pub subuid_lines: Vec<String>,
    #[serde(default)]
    pub subgid_lines: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0:?} is not a user name banger can put in a unit file")]
    BadName(String),
    #[error("no such user {0:?}")]
    NoUser(String),
    #[error("cannot {what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io { what, path, source }
}

/// A user name that is safe on a unit's command line (no quoting needed).
pub fn check_name(name: &str) -> Result<(), InstallError> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(InstallError::BadName(name.to_string()))
    }
}

/// The helper's system unit.
pub fn helper_unit(helper: &Path, owners: &[String]) -> String {
    let owners: String = owners.iter().map(|o| format!(" --owner {o}")).collect();
    format!(
        "# Installed by `banger system install`; removed by `banger system uninstall`.\n\
         [Unit]\n\
         Description=banger root helper: bridge, TAP and NAT changes for banger's users\n\
         After=network.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}{owners}\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        helper.display()
    )
}

/// The daemon's user unit (`systemctl --user enable --now bangerd`).
/// KillMode=process: stopping the daemon must never stop the VMs.
pub fn daemon_user_unit(bangerd: &Path) -> String {
    format!(
        "# Installed by `banger system install`; removed by `banger system uninstall`.\n\
         [Unit]\n\
         Description=banger daemon: your persistent development VMs\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={}\n\
         KillMode=process\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        bangerd.display()
    )
}

/// The line to add to a subordinate id file (`/etc/subuid` text) for
/// `user` (`uid`), or `None` when it already has a range. The new range
/// starts after every existing one, at 100000 at the least.
pub fn subid_line(text: &str, user: &str, uid: u32) -> Option<String> {
    let mut next: u64 = 100_000;
    for line in text.lines() {
        let mut parts = line.trim().split(':');
        let (Some(name), Some(start), Some(count)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if name == user || name == uid.to_string() {
            return None;
        }
        if let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) {
            next = next.max(start + count);
        }
    }
    Some(format!("{user}:{next}:{SUBID_COUNT}"))
}

/// What an install changes, under `root` (`/`, or a staging directory).
pub struct Install<'a> {
    pub root: &'a Path,
    pub helper: &'a Path,
    pub bangerd: &'a Path,
}

impl Install<'_> {
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn manifest(&self) -> Result<Manifest, InstallError> {
        let path = self.path(MANIFEST);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    fn write(&self, rel: &str, text: &str) -> Result<(), InstallError> {
        let path = self.path(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        std::fs::write(&path, text).map_err(io("write", &path))
    }

    fn save(&self, manifest: &Manifest) -> Result<(), InstallError> {
        let text = serde_json::to_string_pretty(manifest).expect("manifests serialise");
        self.write(MANIFEST, &text)
    }

    /// Adds `owners` (name, uid) to the installation and writes its files.
    /// Returns the manifest now in force.
    pub fn install(&self, owners: &[(String, u32)]) -> Result<Manifest, InstallError> {
        let mut manifest = self.manifest()?;
        for (name, uid) in owners {
            check_name(name)?;
            if !manifest.owners.contains(name) {
                manifest.owners.push(name.clone());
            }
            for file in ["etc/subuid", "etc/subgid"] {
                let path = self.path(file);
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                if let Some(line) = subid_line(&text, name, *uid) {
                    // Recorded before it is written: uninstall finds it.
                    match file {
                        "etc/subuid" => manifest.subuid_lines.push(line.clone()),
                        _ => manifest.subgid_lines.push(line.clone()),
                    }
                    self.save(&manifest)?;
                    let mut text = text;
                    if !text.is_empty() && !text.ends_with('\n') {
                        text.push('\n');
                    }
                    text.push_str(&line);
                    text.push('\n');
                    self.write(file, &text)?;
                }
            }
        }
        self.save(&manifest)?;
        self.write(HELPER_UNIT, &helper_unit(self.helper, &manifest.owners))?;
        self.write(DAEMON_USER_UNIT, &daemon_user_unit(self.bangerd))?;
        Ok(manifest)
    }

    /// Removes what [`Install::install`] wrote; returns what it had recorded.
    pub fn uninstall(&self) -> Result<Manifest, InstallError> {
        let manifest = self.manifest()?;
        for (file, added) in [
            ("etc/subuid", &manifest.subuid_lines),
            ("etc/subgid", &manifest.subgid_lines),
        ] {
            let path = self.path(file);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let kept: String = text
                .lines()
                .filter(|l| !added.iter().any(|a| a == l.trim()))
                .map(|l| format!("{l}\n"))
                .collect();
            self.write(file, &kept)?;
        }
        for rel in [HELPER_UNIT, DAEMON_USER_UNIT, MANIFEST] {
            let path = self.path(rel);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &path)(e))
                }
                _ => {}
            }
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_range_goes_after_every_existing_one() {
        let text = "alice:100000:65536\n# comment\nbob:165536:65536\n";
        assert_eq!(subid_line(text, "alice", 1000), None);
        assert_eq!(
            subid_line("1001:200000:10\n", "carol", 1001),
            None,
            "by uid"
        );
        assert_eq!(
            subid_line(text, "carol", 1002).as_deref(),
            Some("carol:231072:65536")
        );
        assert_eq!(
            subid_line("", "dave", 1003).as_deref(),
            Some("dave:100000:65536")
        );
    }

    #[test]
    fn uninstall_undoes_exactly_what_install_did() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        let before_uid = "alice:100000:65536\nroot:1:2\n";
        std::fs::write(root.path().join("etc/subuid"), before_uid).unwrap();
        std::fs::write(root.path().join("etc/subgid"), "alice:100000:65536").unwrap();
        let install = Install {
            root: root.path(),
            helper: Path::new("/usr/local/bin/banger-helper"),
            bangerd: Path::new("/usr/local/bin/bangerd"),
        };
        install.install(&[("alice".into(), 1000)]).unwrap();
        let manifest = install.install(&[("bob".into(), 1001)]).unwrap();
        assert_eq!(manifest.owners, ["alice", "bob"]);
        assert_eq!(manifest.subuid_lines, ["bob:165536:65536"]);
        let unit = std::fs::read_to_string(root.path().join(HELPER_UNIT)).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/local/bin/banger-helper --owner alice --owner bob"),
            "{unit}"
        );
        let daemon = std::fs::read_to_string(root.path().join(DAEMON_USER_UNIT)).unwrap();
        assert!(daemon.contains("KillMode=process"), "{daemon}");
        assert!(std::fs::read_to_string(root.path().join("etc/subgid"))
            .unwrap()
            .contains("alice:100000:65536\nbob:165536:65536\n"));

        install.uninstall().unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/subuid")).unwrap(),
            before_uid
        );
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/subgid")).unwrap(),
            "alice:100000:65536\n"
        );
        for rel in [HELPER_UNIT, DAEMON_USER_UNIT, MANIFEST] {
            assert!(!root.path().join(rel).exists(), "{rel}");
        }
        assert!(matches!(
            install.install(&[("x\ny".into(), 5)]),
            Err(InstallError::BadName(_))
        ));
    }
}
