//! What a VM's guest needs to know about itself (hostname, address, keys,
//! mounts), rendered as files for the VM's overlay disk. The files go into
//! the overlay's `upper/` layer through `mkfs.ext4 -d`: nothing is mounted
//! on the host.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

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

    /// A script that gives a running guest this identity in place of the
    /// one it had (`was`: its MAC and address), for a guest restored from
    /// another's memory: the clock set to `now`, the files (one tar
    /// archive), a new machine-id, the kernel's RNG fed `seed`, the
    /// hostname, the interface's MAC and address, and sshd told to reload
    /// its host key. Every value is banger's own (a validated name,
    /// addresses, base64), single-quoted. Few processes: each costs ~0.1 s
    /// in an emulated guest.
    pub fn takeover_script(
        &self,
        was: (banger_api::MacAddr, Ipv4Addr),
        seed: &[u8],
        now: time::OffsetDateTime,
    ) -> String {
        use base64::Engine;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let (old_mac, old_ip) = was;
        let (mac, ip, prefix, gw) = (self.mac, self.address, self.prefix, self.gateway);
        let mut script = format!(
            "set -eu\n\
             date -u -s '@{secs}.{nanos:09}' >/dev/null\n\
             printf '%s' '{files}' | base64 -d | tar -x -C /\n\
             rm -f /etc/machine-id /var/lib/dbus/machine-id /var/lib/systemd/random-seed \\\n\
               /etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_rsa_key.pub /etc/ssh/ssh_host_ecdsa_key /etc/ssh/ssh_host_ecdsa_key.pub\n\
             if command -v systemd-machine-id-setup >/dev/null; then systemd-machine-id-setup >/dev/null 2>&1\n\
             elif command -v dbus-uuidgen >/dev/null; then dbus-uuidgen > /etc/machine-id; fi\n\
             printf '%s' '{seed}' | base64 -d > /dev/urandom\n\
             echo '{name}' > /proc/sys/kernel/hostname\n\
             dev=\n\
             for d in /sys/class/net/*; do read -r a < \"$d/address\" || a=; [ \"$a\" = '{old_mac}' ] && dev=${{d##*/}}; done\n\
             [ -n \"$dev\" ] || {{ echo 'no interface has MAC {old_mac}' >&2; exit 1; }}\n\
             echo 1 > \"/proc/sys/net/ipv4/conf/$dev/promote_secondaries\"\n",
            secs = now.unix_timestamp(),
            nanos = now.nanosecond(),
            files = b64(&self.tar()),
            seed = b64(seed),
            name = self.hostname,
        );
        let mut ip_batch = format!(
            "link set dev $dev down\nlink set dev $dev address {mac}\nlink set dev $dev up\n"
        );
        if old_ip != ip {
            ip_batch.push_str(&format!(
                "address add {ip}/{prefix} dev $dev\naddress del {old_ip}/{prefix} dev $dev\n"
            ));
        }
        ip_batch.push_str(&format!(
            "route replace default via {gw} dev $dev\nneighbour flush dev $dev\n"
        ));
        script.push_str(&format!("ip -force -batch - <<EOF\n{ip_batch}EOF\n"));
        // OpenSSH before 9.8 re-executes for each connection and reads the
        // new host key then: nothing to do. Later ones (their per-connection
        // half is `sshd-session`) hold the keys in the listener: a HUP makes
        // it start again with the new one.
        script.push_str(
            "for s in /usr/lib/openssh/sshd-session /usr/libexec/sshd-session /usr/libexec/openssh/sshd-session; do\n\
               [ -e \"$s\" ] || continue\n\
               if read -r pid < /run/sshd.pid 2>/dev/null; then kill -HUP \"$pid\" || true\n\
               else systemctl --no-block try-restart ssh.service sshd.service 2>/dev/null || sv restart sshd >/dev/null 2>&1 || true; fi\n\
               break\n\
             done\n",
        );
        script
    }

    /// The configuration files as a tar archive rooted at `/`, owned by root.
    fn tar(&self) -> Vec<u8> {
        let mut archive = tar::Builder::new(Vec::new());
        for f in self.files() {
            let mut header = tar::Header::new_gnu();
            header.set_size(f.contents.len() as u64);
            header.set_mode(f.mode);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(
                u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0),
            );
            header.set_entry_type(tar::EntryType::Regular);
            archive
                .append_data(&mut header, f.path, f.contents.as_bytes())
                .expect("writing a tar archive to memory");
        }
        archive
            .into_inner()
            .expect("writing a tar archive to memory")
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
    fn a_takeover_script_carries_the_files_and_the_new_addresses() {
        let config = GuestConfig {
            hostname: "copy",
            mac: "52:54:00:aa:bb:cd".parse().unwrap(),
            address: Ipv4Addr::new(172, 30, 0, 6),
            prefix: 24,
            gateway: Ipv4Addr::new(172, 30, 0, 1),
            authorized_key: "ssh-ed25519 AAAA banger",
            host_key: ("PRIVATE 'quoted'", "ssh-ed25519 HOST"),
            nameservers: &[],
        };
        let was = (
            "52:54:00:aa:bb:cc".parse().unwrap(),
            Ipv4Addr::new(172, 30, 0, 5),
        );
        let script = config.takeover_script(was, b"seed", time::OffsetDateTime::UNIX_EPOCH);
        assert!(script.contains("date -u -s '@0.000000000'"), "{script}");
        assert!(script.contains("address 52:54:00:aa:bb:cd\n"), "{script}");
        assert!(script.contains("address del 172.30.0.5/24"), "{script}");
        assert!(script.contains("= '52:54:00:aa:bb:cc'"), "{script}");
        // The archive unpacks to the files, modes kept.
        let root = tempfile::tempdir().unwrap();
        tar::Archive::new(config.tar().as_slice())
            .unpack(root.path())
            .unwrap();
        let read = |p: &str| std::fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(read("etc/hostname"), "copy\n");
        assert_eq!(read("etc/ssh/ssh_host_ed25519_key"), "PRIVATE 'quoted'");
        assert!(read("etc/banger/network").contains("BANGER_MAC=52:54:00:aa:bb:cd"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.path().join("etc/ssh/ssh_host_ed25519_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // The same address (the template's was freed and given again):
        // nothing to add or remove.
        let same = config.takeover_script(
            (was.0, config.address),
            b"seed",
            time::OffsetDateTime::UNIX_EPOCH,
        );
        assert!(!same.contains("address add"), "{same}");
    }
}
