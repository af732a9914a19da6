//! Images as the API shows them, and the requests that build and register them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    /// Built by banger (and deleted with it) rather than registered from outside.
    pub managed: bool,
    pub rootfs: PathBuf,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub kernel_version: String,
    /// What seeds a new VM's `/root`: a directory or an ext4 image; `""` in
    /// the JSON when `/root` starts empty.
    #[serde(with = "empty_is_none")]
    pub work_seed: Option<PathBuf>,
    /// sha256 of the package manifest the image was built from.
    pub packages_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The rootfs has the guest agent (`/usr/local/bin/banger-agent`): VMs
    /// are ready when it answers, and have `vm exec`, `vm ports`, guest stats.
    #[serde(default)]
    pub agent: bool,
    /// Its agent can also be reached over a virtio-serial port, which QEMU
    /// can save (suspend, clone); older agents speak only vsock.
    #[serde(default)]
    pub agent_serial: bool,
    /// It has a warm template (`image warm`): creates restore it instead
    /// of booting. Known to the daemon, not stored with the image.
    #[serde(default)]
    pub warm: bool,
}

/// An optional path written as a string, `""` for none (the API's form
/// since before the field was typed).
mod empty_is_none {
    use std::path::PathBuf;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        match path {
            Some(p) => s.collect_str(&p.display()),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        let text = String::deserialize(d)?;
        Ok((!text.is_empty()).then(|| PathBuf::from(text)))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuildImageRequest {
    pub name: String,
    /// Path to a packages.apt file; the bundled default when absent.
    #[serde(default)]
    pub packages: Option<PathBuf>,
    /// Root filesystem size ("4G"); just enough for the packages when absent.
    #[serde(default)]
    pub size: Option<String>,
    /// Adds Docker (`docker.io`) to the packages.
    #[serde(default)]
    pub docker: bool,
    /// `debian` (the default) or `void` (experimental).
    #[serde(default)]
    pub distro: Option<String>,
    /// The distribution's mirror: a URL, or a local mirror directory.
    #[serde(default)]
    pub mirror: Option<String>,
    /// An absolute path to a Debian ext4 image to start from (no mmdebstrap).
    #[serde(default)]
    pub base_rootfs: Option<PathBuf>,
    /// An absolute path to the kernel to boot instead of the distribution's
    /// (an x86-64 ELF vmlinux).
    #[serde(default)]
    pub kernel: Option<PathBuf>,
}

/// `image register`: an image made outside banger. Paths are absolute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegisterImageRequest {
    pub name: String,
    /// An ext4 root filesystem image.
    pub rootfs: PathBuf,
    /// A prepared `/root`: an ext4 image or a directory.
    #[serde(default)]
    pub work_seed: Option<PathBuf>,
    /// The kernel; the default image's when absent.
    #[serde(default)]
    pub kernel: Option<PathBuf>,
    #[serde(default)]
    pub initrd: Option<PathBuf>,
    /// The kernel's modules directory (`lib/modules/<version>`).
    #[serde(default)]
    pub modules: Option<PathBuf>,
    /// The package manifest the rootfs was made from, for the record.
    #[serde(default)]
    pub packages: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_without_a_work_seed_says_so_with_an_empty_string() {
        let mut image = Image {
            name: "mine".into(),
            managed: false,
            rootfs: "/i/rootfs.ext4".into(),
            kernel: "/i/vmlinux".into(),
            initrd: "/i/initrd.img".into(),
            kernel_version: "6.1".into(),
            work_seed: None,
            packages_sha256: String::new(),
            created_at: time::macros::datetime!(2026-11-28 16:42:47 UTC),
            agent: true,
            agent_serial: true,
            warm: false,
        };
        let json = serde_json::to_value(&image).unwrap();
        assert_eq!(json["work_seed"], "");
        assert_eq!(json["created_at"], "2026-11-28T16:42:47Z");
        assert_eq!(serde_json::from_value::<Image>(json).unwrap(), image);
        image.work_seed = Some("/i/work-seed".into());
        let json = serde_json::to_value(&image).unwrap();
        assert_eq!(json["work_seed"], "/i/work-seed");
        assert_eq!(serde_json::from_value::<Image>(json).unwrap(), image);
    }
}
