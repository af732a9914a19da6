//! `vm create`: validate, claim a name and an address, make the disks and
//! the guest configuration, boot. Every host resource is journaled before it
//! is made, and any failure rolls the whole VM back.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use banger_api::names::{generated_name, validate_name};
use banger_api::{parse_size, ApiError, CreateVmRequest, Image, Vm, VmState, VmmKind};
use banger_host::runner::Cmd;
use banger_host::{ssh, tools};
use banger_image::LABEL_OVERLAY;
use banger_store::ResourceKind;
use rand::Rng;

use super::{boot, journal, VmFiles};
use crate::app::{now, App};
use crate::caps;
use crate::crash;
use crate::errors::{self, OpResult};
use crate::guest_config::GuestConfig;
use crate::images;
use crate::progress::Reporter;

/// Checks vCPU and memory against what the VMM accepts.
pub fn validate_shape(vmm: VmmKind, vcpu: u32, memory_mib: u32) -> OpResult<()> {
    let max_vcpu = 32;
    if vcpu == 0 || vcpu > max_vcpu {
        return Err(ApiError::invalid(format!("--vcpu {vcpu} is out of range"))
            .with_hint(format!("use 1 to {max_vcpu} vCPUs")));
    }
    if vmm == VmmKind::Firecracker && vcpu != 1 && !vcpu.is_multiple_of(2) {
        return Err(ApiError::invalid(format!(
            "--vcpu {vcpu}: Firecracker accepts 1 or an even number of vCPUs"
        ))
        .with_hint("use 1, 2, 4, ... 32"));
    }
    if !(128..=1 << 20).contains(&memory_mib) {
        return Err(
            ApiError::invalid(format!("--memory {memory_mib} MiB is out of range"))
                .with_hint("use between 128 and 1048576 MiB"),
        );
    }
    Ok(())
}

pub async fn create(app: Arc<App>, request: CreateVmRequest, reporter: Reporter) -> OpResult<Vm> {
    let since = std::time::Instant::now();
    let vcpu = request.vcpu.unwrap_or(app.config.default_vcpu);
    let memory_mib = request.memory_mib.unwrap_or(app.config.default_memory_mib);
    validate_shape(app.vmm, vcpu, memory_mib)?;
    let disk_size = parse_size(
        request
            .disk_size
            .as_deref()
            .unwrap_or(&app.config.default_disk_size),
    )?;
    if disk_size < 64 << 20 {
        return Err(
            ApiError::invalid("--disk-size must be at least 64M").with_hint("e.g. --disk-size 8G")
        );
    }
    let overlay_size = parse_size(&app.config.overlay_size)?;
    if let Some(name) = &request.name {
        validate_name(name)?;
        ensure_name_free(&app, name)?;
    }
    // Fail on a missing tool before anything is made.
    app.driver(app.vmm)?;
    for tool in crate::doctor::VM_TOOLS {
        tools::require(tool).map_err(errors::host)?;
    }
    let image_name = request
        .image
        .clone()
        .unwrap_or_else(|| app.config.default_image.clone());
    let image = images::ensure(&app, &image_name, &reporter).await?;
    {
        let _key = app.key_lock.lock().await;
        ssh::ensure_keypair(app.host.runner.as_ref(), &app.paths.ssh_key(), "banger")
            .await
            .map_err(errors::host)?;
    }

    let mut vm = claim(
        &app,
        request.name,
        &image,
        vcpu,
        memory_mib,
        disk_size,
        overlay_size,
        request.nat,
    )
    .await?;
    let _guard = app.lock_vm(&vm.id).await;
    crash::point("create.claimed");
    reporter.say(
        "vm.claim",
        format!("VM {} ({}) gets {} on {}", vm.name, vm.id, vm.ip, vm.tap),
        Some(0.6),
    );

    let result = async {
        prepare_disks(&app, &vm, &image, &reporter).await?;
        crash::point("create.disks");
        boot::boot(&app, &mut vm, &image, &reporter, since).await
    }
    .await;
    match result {
        Ok(()) => {
            tracing::info!(vm = %vm.name, id = %vm.id, ip = %vm.ip, "VM created");
            Ok(vm)
        }
        Err(err) => {
            tracing::warn!(vm = %vm.name, error = %err, "create failed; rolling back");
            reporter.say(
                "vm.rollback",
                format!("create failed; removing everything made for {}", vm.name),
                None,
            );
            rollback(&app, &vm).await;
            Err(err)
        }
    }
}

/// Removes every trace of a VM that never finished creating.
pub async fn rollback(app: &App, vm: &Vm) {
    let released = boot::release(app, vm).await;
    let undone = journal::undo_kinds(app, &vm.id, Some(&vm.dir), journal::ALL).await;
    if let Err(e) = released.and(undone) {
        tracing::error!(vm = %vm.name, error = %e, "rollback incomplete; the daemon retries at its next start");
        let mut failed = vm.clone();
        failed.stop_reason = Some(format!(
            "its create failed and could not be fully undone ({})",
            e.message
        ));
        let _ = app.store.update_vm(&failed);
        return;
    }
    if let Err(e) = app.store.delete_vm(&vm.id) {
        tracing::error!(vm = %vm.name, error = %e, "cannot delete VM row");
    }
    app.forget_vm_lock(&vm.id);
}

fn ensure_name_free(app: &App, name: &str) -> OpResult<()> {
    if app
        .store
        .list_vms()
        .map_err(errors::store)?
        .iter()
        .any(|vm| vm.name == name)
    {
        return Err(
            ApiError::conflict(format!("a VM named {name:?} already exists")).with_hint(
                "pick another --name, or delete the existing VM with `banger vm delete`",
            ),
        );
    }
    Ok(())
}

/// Allocates id, name, IP, MAC and TAP and inserts the row (state
/// `creating`) in one step, so concurrent creates never collide.
#[allow(clippy::too_many_arguments)]
async fn claim(
    app: &App,
    name: Option<String>,
    image: &Image,
    vcpu: u32,
    memory_mib: u32,
    disk_size: u64,
    overlay_size: u64,
    nat: bool,
) -> OpResult<Vm> {
    let _alloc = app.alloc_lock.lock().await;
    // `image delete` checks for users under the same lock: the image is
    // either still there for this VM or already refused to it.
    if app
        .store
        .get_image(&image.name)
        .map_err(errors::store)?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "image {} was deleted while this VM was being created",
            image.name
        ))
        .with_hint("pick another --image, or build it again"));
    }
    let vms = app.store.list_vms().map_err(errors::store)?;
    let mut rng = rand::thread_rng();
    let name = match name {
        Some(name) => {
            ensure_name_free(app, &name)?;
            name
        }
        None => (0..100)
            .map(|_| generated_name(rng.gen()))
            .find(|candidate| !vms.iter().any(|vm| &vm.name == candidate))
            .unwrap_or_else(|| format!("vm-{:06x}", rng.gen::<u32>() & 0xffffff)),
    };
    let used: Vec<&str> = vms.iter().map(|vm| vm.ip.as_str()).collect();
    let ip: Ipv4Addr = app
        .subnet
        .guest_addresses()
        .find(|ip| !used.contains(&ip.to_string().as_str()))
        .ok_or_else(|| {
            ApiError::conflict(format!(
                "no free guest address left in {}",
                app.config.bridge_subnet
            ))
            .with_hint("delete unused VMs or configure a larger bridge_subnet")
        })?;
    let id: String = (0..6).map(|_| format!("{:02x}", rng.gen::<u8>())).collect();
    let bytes: Vec<u8> = (0..3)
        .map(|i| u8::from_str_radix(&id[i * 2..i * 2 + 2], 16).unwrap_or(0))
        .collect();
    let vm = Vm {
        id: id.clone(),
        name,
        state: VmState::Creating,
        image: image.name.clone(),
        vmm: app.vmm,
        accel: app.accel().to_string(),
        vcpu,
        memory_mib,
        disk_size_bytes: disk_size,
        overlay_size_bytes: overlay_size,
        nat,
        ip: ip.to_string(),
        mac: format!(
            "52:54:00:{:02x}:{:02x}:{:02x}",
            bytes[0], bytes[1], bytes[2]
        ),
        tap: format!("bg-{id}"),
        pid: None,
        created_at: now(),
        started_at: None,
        stop_reason: None,
        dir: app.paths.vm_dir(&id).display().to_string(),
    };
    app.store.insert_vm(&vm).map_err(errors::store)?;
    Ok(vm)
}

async fn prepare_disks(app: &App, vm: &Vm, image: &Image, reporter: &Reporter) -> OpResult<()> {
    let files = VmFiles::new(Path::new(&vm.dir));
    app.store
        .record_resource(&vm.id, ResourceKind::Dir, &vm.dir)
        .map_err(errors::store)?;
    std::fs::create_dir_all(&files.dir).map_err(|e| {
        errors::host(banger_host::HostError::path_io(
            "cannot create",
            &files.dir,
            e,
        ))
    })?;

    reporter.say("vm.keys", "generating the VM's SSH host key", Some(0.65));
    app.host
        .runner
        .run(
            Cmd::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C"])
                .arg(format!("root@{}", vm.name))
                .arg("-f")
                .arg(files.host_key()),
        )
        .await
        .map_err(errors::host)?;
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map_err(|e| errors::host(banger_host::HostError::path_io("cannot read", p, e)))
    };
    let host_private = read(&files.host_key())?;
    let host_public = read(&files.host_key().with_extension("pub"))?;
    let alias = host_key_alias(vm);
    let known = format!(
        "{alias} {}\n",
        host_public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    std::fs::write(files.known_hosts(), known)
        .map_err(|e| errors::host(banger_host::HostError::io("write known_hosts", e)))?;

    reporter.say(
        "vm.overlay",
        "writing the system overlay disk with the guest configuration",
        Some(0.7),
    );
    let authorized_key = ssh::public_key(&app.paths.ssh_key()).map_err(errors::host)?;
    let config = GuestConfig {
        hostname: &vm.name,
        mac: &vm.mac,
        address: vm.ip.parse().map_err(|_| ApiError::internal("bad IP"))?,
        prefix: app.subnet.prefix,
        gateway: app.subnet.gateway(),
        authorized_key: &authorized_key,
        host_key: (&host_private, &host_public),
        nameservers: &banger_host::net::upstream_nameservers(),
    };
    let tree = files.dir.join("overlay-tree");
    config.write_overlay_tree(&tree).map_err(|e| {
        errors::host(banger_host::HostError::io(
            "write the guest configuration",
            e,
        ))
    })?;
    app.host
        .disks
        .create_ext4(
            &files.overlay(),
            vm.overlay_size_bytes,
            LABEL_OVERLAY,
            Some(&tree),
        )
        .await
        .map_err(errors::host)?;
    let _ = std::fs::remove_dir_all(&tree);

    // The work disk and whatever else plugs in at create.
    caps::create(app, vm, image, reporter).await
}

/// The name ssh knows this VM's host key under (stable if the IP changes).
pub fn host_key_alias(vm: &Vm) -> String {
    format!("banger-{}", vm.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_against_the_vmm() {
        assert!(validate_shape(VmmKind::Qemu, 3, 1024).is_ok());
        let err = validate_shape(VmmKind::Firecracker, 3, 1024).unwrap_err();
        assert!(err.message.contains("even"), "{}", err.message);
        assert!(validate_shape(VmmKind::Firecracker, 1, 1024).is_ok());
        assert!(validate_shape(VmmKind::Qemu, 0, 1024).is_err());
        assert!(validate_shape(VmmKind::Qemu, 64, 1024).is_err());
        assert!(validate_shape(VmmKind::Qemu, 2, 16).is_err());
    }
}
