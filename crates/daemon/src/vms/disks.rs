//! A new VM's directory and disks: its SSH host key and known_hosts line,
//! the overlay disk holding the guest configuration, and whatever the
//! capabilities make at create (the `/root` work disk). Everything is
//! journaled before it is made.

use std::path::Path;

use banger_api::{Image, Vm};
use banger_host::runner::Cmd;
use banger_host::{ssh, HostError};
use banger_image::LABEL_OVERLAY;
use banger_store::ResourceKind;

use super::{Result, Vms};
use crate::guest_config::GuestConfig;
use crate::progress::Reporter;

/// The name ssh knows this VM's host key under (stable if the IP changes).
pub fn host_key_alias(vm: &Vm) -> String {
    format!("banger-{}", vm.id)
}

fn read(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path).map_err(|e| HostError::path_io("cannot read", path, e))?)
}

impl Vms {
    /// A new SSH host key for the VM (private, public), and the
    /// known_hosts line `vm ssh` checks it against.
    pub(crate) async fn make_host_key(&self, vm: &Vm) -> Result<(String, String)> {
        let files = vm.files();
        let _ = std::fs::remove_file(files.host_key());
        let _ = std::fs::remove_file(files.host_key().with_extension("pub"));
        self.host
            .runner
            .run(
                Cmd::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C"])
                    .arg(format!("root@{}", vm.name))
                    .arg("-f")
                    .arg(files.host_key()),
            )
            .await?;
        let host_private = read(&files.host_key())?;
        let host_public = read(&files.host_key().with_extension("pub"))?;
        let key: Vec<&str> = host_public.split_whitespace().take(2).collect();
        let known = format!("{} {}\n", host_key_alias(vm), key.join(" "));
        std::fs::write(files.known_hosts(), known)
            .map_err(|e| HostError::path_io("cannot write", &files.known_hosts(), e))?;
        Ok((host_private, host_public))
    }

    /// What the guest is told about itself.
    pub(crate) fn guest_config<'a>(
        &self,
        vm: &'a Vm,
        authorized_key: &'a str,
        host_key: &'a (String, String),
        nameservers: &'a [std::net::IpAddr],
    ) -> GuestConfig<'a> {
        GuestConfig {
            hostname: &vm.name,
            mac: vm.mac,
            address: vm.ip,
            prefix: self.subnet.prefix,
            gateway: self.subnet.gateway(),
            authorized_key,
            host_key: (&host_key.0, &host_key.1),
            nameservers,
        }
    }

    pub(crate) async fn prepare_disks(
        &self,
        vm: &Vm,
        image: &Image,
        reporter: &Reporter,
    ) -> Result<()> {
        let files = vm.files();
        self.journal
            .record(&vm.id, ResourceKind::Dir, &vm.dir.to_string_lossy())?;
        std::fs::create_dir_all(&files.dir)
            .map_err(|e| HostError::path_io("cannot create", &files.dir, e))?;

        reporter.say("vm.keys", "generating the VM's SSH host key", Some(0.65));
        let host_key = self.make_host_key(vm).await?;

        reporter.say(
            "vm.overlay",
            "writing the system overlay disk with the guest configuration",
            Some(0.7),
        );
        let authorized_key = ssh::public_key(&self.paths.ssh_key())?;
        let nameservers = banger_host::net::upstream_nameservers();
        let config = self.guest_config(vm, &authorized_key, &host_key, &nameservers);
        let tree = files.dir.join("overlay-tree");
        config
            .write_overlay_tree(&tree)
            .map_err(|e| HostError::io("cannot write the guest configuration", e))?;
        self.host
            .disks
            .create_ext4(
                &files.overlay(),
                vm.overlay_size_bytes,
                LABEL_OVERLAY,
                Some(&tree),
            )
            .await?;
        let _ = std::fs::remove_dir_all(&tree);

        // The work disk and whatever else plugs in at create.
        self.caps.create(vm, image, reporter).await?;
        Ok(())
    }
}
