//! What a VM's guest needs to know about itself (hostname, address, keys,
//! mounts), rendered as files for the VM's overlay disk. The files go into
//! the overlay's `upper/` layer through `mkfs.ext4 -d`: nothing is mounted
//! on the host.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use banger_api::agent::{Grow, Identity, IdentityFile, Readdress};
use banger_image::LABEL_WORK;

pub struct GuestConfig<'a> {
    pub hostname: &'a str,
    pub mac: banger_api::MacAddr,
    pub address: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub authorized_key: &'a str,
    /// The VM's SSH host key pair (private, public).
    pub host_key: (&'a str, &'a str),
    /// Resolvers the guest can reach (the host's upstream ones), for
    /// guests with NAT. Empty: the guest gets no resolv.conf entries.
    pub nameservers: &'a [IpAddr],
}

/// One file of the guest's configuration.
pub struct GuestFile {
    pub path: &'static str,
    pub mode: u32,
    pub contents: String,
}

impl GuestConfig<'_> {
    pub fn files(&self) -> Vec<GuestFile> {
        let file = |path, mode, contents: String| GuestFile {
            path,
            mode,
            contents,
        };
        vec![
            file("etc/hostname", 0o644, format!("{}\n", self.hostname)),
            file(
                "etc/hosts",
                0o644,
                format!("127.0.0.1\tlocalhost\n127.0.1.1\t{0}\n::1\tlocalhost ip6-localhost ip6-loopback\n", self.hostname),
            ),
            file(
                "etc/fstab",
                0o644,
                format!("# Written by banger. / is an overlay assembled by the initramfs.\nLABEL={LABEL_WORK}\t/root\text4\tdefaults,noatime\t0\t2\n"),
            ),
            // Read by the initramfs, which configures the interface with this MAC.
            file(
                "etc/banger/network",
                0o644,
                format!(
                    "BANGER_MAC={}\nBANGER_ADDRESS={}/{}\nBANGER_GATEWAY={}\n",
                    self.mac, self.address, self.prefix, self.gateway
                ),
            ),
            file(
                "etc/resolv.conf",
                0o644,
                // Short timeouts: a guest without NAT cannot reach these,
                // and its lookups should fail fast rather than hang.
                std::iter::once("# Written by banger: the host's upstream resolvers at create.\noptions timeout:1 attempts:1\n".to_string())
                    .chain(self.nameservers.iter().map(|ns| format!("nameserver {ns}\n")))
                    .collect(),
            ),
            file("etc/banger/authorized_keys", 0o644, format!("{}\n", self.authorized_key)),
            file("etc/ssh/ssh_host_ed25519_key", 0o600, self.host_key.0.to_string()),
            file("etc/ssh/ssh_host_ed25519_key.pub", 0o644, self.host_key.1.to_string()),
        ]
    }

    /// What a running guest restored from another's memory (`was`: the
    /// MAC and address it starts out with) is told to become: the clock
    /// set to `now`, the kernel's RNG fed `seed`, these files, a new
    /// `machine_id`, the hostname, the interface's MAC and address, and
    /// the filesystems in `grow` grown. The guest's agent does it.
    pub fn identity(
        &self,
        was: (banger_api::MacAddr, Ipv4Addr),
        seed: &[u8],
        machine_id: String,
        now: time::OffsetDateTime,
        grow: Vec<Grow>,
    ) -> Identity {
        use base64::Engine;
        Identity {
            now_secs: now.unix_timestamp(),
            now_nanos: now.nanosecond(),
            seed: base64::engine::general_purpose::STANDARD.encode(seed),
            files: self
                .files()
                .into_iter()
                .map(|f| IdentityFile {
                    path: format!("/{}", f.path),
                    mode: f.mode,
                    contents: f.contents,
                })
                .collect(),
            machine_id,
            hostname: self.hostname.to_string(),
            network: Readdress {
                from_mac: was.0,
                from_address: was.1,
                mac: self.mac,
                address: self.address,
                prefix: self.prefix,
                gateway: self.gateway,
            },
            grow,
        }
    }

    /// Lays the overlay disk's tree out under `root`: `upper/` with the
    /// files, and the empty `work/` overlayfs needs.
    pub fn write_overlay_tree(&self, root: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(root.join("work"))?;
        for f in self.files() {
            let path = root.join("upper").join(f.path);
            std::fs::create_dir_all(path.parent().expect("guest paths have a parent"))?;
            std::fs::write(&path, &f.contents)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(f.mode))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_guest_identity() {
        let config = GuestConfig {
            hostname: "calm-otter",
            mac: "52:54:00:aa:bb:cc".parse().unwrap(),
            address: Ipv4Addr::new(172, 30, 0, 5),
            prefix: 24,
            gateway: Ipv4Addr::new(172, 30, 0, 1),
            authorized_key: "ssh-ed25519 AAAA banger",
            host_key: ("PRIVATE", "ssh-ed25519 HOST"),
            nameservers: &["9.9.9.9".parse().unwrap()],
        };
        let dir = tempfile::tempdir().unwrap();
        config.write_overlay_tree(dir.path()).unwrap();
        let read = |p: &str| std::fs::read_to_string(dir.path().join("upper").join(p)).unwrap();
        assert_eq!(read("etc/hostname"), "calm-otter\n");
        assert!(read("etc/resolv.conf").contains("nameserver 9.9.9.9\n"));
        assert!(read("etc/fstab").contains("LABEL=banger-work\t/root\text4"));
        assert!(read("etc/banger/network").contains("BANGER_ADDRESS=172.30.0.5/24"));
        assert!(read("etc/banger/network").contains("BANGER_MAC=52:54:00:aa:bb:cc"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("upper/etc/ssh/ssh_host_ed25519_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(dir.path().join("work").is_dir());
    }

    #[test]
    fn an_identity_carries_the_files_and_the_new_addresses() {
        let config = GuestConfig {
            hostname: "copy",
            mac: "52:54:00:aa:bb:cd".parse().unwrap(),
            address: Ipv4Addr::new(172, 30, 0, 6),
            prefix: 24,
            gateway: Ipv4Addr::new(172, 30, 0, 1),
            authorized_key: "ssh-ed25519 AAAA banger",
            host_key: ("PRIVATE", "ssh-ed25519 HOST"),
            nameservers: &[],
        };
        let was = (
            "52:54:00:aa:bb:cc".parse().unwrap(),
            Ipv4Addr::new(172, 30, 0, 5),
        );
        let identity = config.identity(
            was,
            b"seed",
            "0".repeat(32),
            time::OffsetDateTime::UNIX_EPOCH,
            Vec::new(),
        );
        assert_eq!((identity.now_secs, identity.now_nanos), (0, 0));
        assert_eq!(identity.seed, "c2VlZA==");
        assert_eq!(identity.network.from_mac, was.0);
        assert_eq!(identity.network.from_address, was.1);
        assert_eq!(identity.network.mac, config.mac);
        assert_eq!(identity.network.address, config.address);
        let key = identity
            .files
            .iter()
            .find(|f| f.path == "/etc/ssh/ssh_host_ed25519_key")
            .unwrap();
        assert_eq!((key.mode, key.contents.as_str()), (0o600, "PRIVATE"));
        assert!(identity.files.iter().all(|f| f.path.starts_with("/etc/")));
    }
}
