//! The Firecracker driver and the daemon's Firecracker lifecycle against the
//! real Firecracker v1.16.1 (see `real/mod.rs` for where it is found). On
//! this kind of host (KVM through PVM) the guest starts executing and the
//! VMM stops by itself about 20 s later with `KVM_EXIT_INTERNAL_ERROR`, so
//! readiness is a double here ([`Real::app_ready_at_once`]) except where
//! the test is that death. The fake Firecracker is checked against the
//! real one answer by answer.

mod real;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use banger_api::{VmState, VmmKind};
use banger_daemon::progress::Reporter;
use banger_daemon::vms::VmError;
use banger_host::probe::SshBanner;
use real::*;

#[test]
fn a_vm_lives_its_whole_lifecycle_under_the_real_firecracker() {
    let Some(mut real) = Real::new() else { return };
    let app = real.app_ready_at_once();
    // Three vCPUs: the real binary takes an odd count without SMT.
    let vm = real
        .block_on(app.vms().clone().create(
            banger_api::CreateVmRequest {
                vcpu: Some(3),
                ..request("fc1")
            },
            Reporter::silent(),
        ))
        .expect("create up to a running VMM");
    assert_eq!((vm.state, vm.vmm), (VmState::Running, VmmKind::Firecracker));
    let pid = vm.pid.unwrap();
    assert_eq!(exe(pid).as_deref(), Some(real.firecracker.as_path()));

    // Firecracker opened the TAP banger put on the bridge (it has a
    // carrier once a process holds it), the VM's disks, and made the vsock
    // socket itself.
    let tap = run(&["ip", "-o", "link", "show", "dev", &vm.tap]);
    assert!(tap.contains("master banger0"), "{tap}");
    assert!(!tap.contains("NO-CARRIER"), "nobody opened the TAP: {tap}");
    let files = vm.files();
    let open = open_files(pid);
    for disk in [files.overlay(), files.work()] {
        assert!(
            open.contains(&disk),
            "{} not open: {open:?}",
            disk.display()
        );
    }
    let vsock = std::fs::metadata(files.vsock()).expect("vsock socket");
    assert!(std::os::unix::fs::FileTypeExt::is_socket(
        &vsock.file_type()
    ));
    let logged = std::fs::read_to_string(vm.vmm_log()).unwrap();
    assert!(
        logged.contains("[fc1:") || logged.contains(&format!("[{}:", vm.id)),
        "{logged}"
    );
    assert!(logged.contains("InstanceStart"), "{logged}");

    // show reads the VMM live; stats take the VMM's own counts.
    let status = real.block_on(app.vms().vmm_status("fc1")).unwrap();
    assert_eq!(status.version, "1.16.1");
    assert_eq!(status.state, "Running");
    assert_eq!((status.vcpu, status.memory_mib), (Some(3), Some(256)));
    let stats = real.block_on(app.vms().stats("fc1")).unwrap();
    assert_eq!(stats.pid, Some(pid));
    assert!(stats.rss_bytes.is_some_and(|b| b > 0));
    assert!(
        stats.vmm_metrics.is_some(),
        "FlushMetrics, then the metrics file"
    );

    // A disk grown under the running guest (what a warm create of a
    // bigger /root does): the file grows and Firecracker takes it; a drive
    // it was not given is refused.
    let firecracker = banger_vmm::firecracker::Firecracker::new(real.firecracker.clone());
    use banger_vmm::Vmm;
    let bigger = vm.disk_size_bytes + (1 << 30);
    real.block_on(firecracker.grow_disk(&vm.dir, "work", &files.work(), bigger))
        .expect("PATCH /drives/work of the running VM");
    assert_eq!(std::fs::metadata(files.work()).unwrap().len(), bigger);
    let refused = real.block_on(firecracker.grow_disk(&vm.dir, "nope", &files.work(), bigger));
    assert!(
        matches!(refused, Err(banger_vmm::VmmError::Grow { .. })),
        "{refused:?}"
    );

    // stop: the guest does not answer Ctrl-Alt-Del, so the VMM is terminated.
    let stopped = real
        .block_on(app.vms().clone().stop("fc1".into(), false))
        .unwrap();
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(exe(pid).is_none(), "the VMM is gone");
    assert!(
        !links().contains(&vm.tap),
        "TAP released on stop:\n{}",
        links()
    );

    // start, then kill.
    let again = real
        .block_on(app.vms().clone().start("fc1".into(), Reporter::silent()))
        .unwrap();
    assert_ne!(again.pid, Some(pid));
    let killed = real
        .block_on(app.vms().clone().kill("fc1".into(), "KILL".into()))
        .unwrap();
    assert_eq!(killed.state, VmState::Stopped);
    assert!(exe(again.pid.unwrap()).is_none());

    // A daemon restart adopts the running Firecracker and leaves it running.
    let running = real
        .block_on(app.vms().clone().start("fc1".into(), Reporter::silent()))
        .unwrap();
    let running_pid = running.pid.unwrap();
    drop(app);
    // The old daemon's tasks (its monitors) end with its runtime.
    real.restart_runtime();
    let app = real.app_ready_at_once();
    real.block_on(app.vms().reconcile()).unwrap();
    let adopted = app.store().resolve_vm("fc1").unwrap();
    assert_eq!(adopted.state, VmState::Running, "{:?}", adopted.stop_reason);
    assert_eq!(
        exe(running_pid).as_deref(),
        Some(real.firecracker.as_path())
    );
    let status = real.block_on(app.vms().vmm_status("fc1")).unwrap();
    assert_eq!(status.state, "Running");

    // delete leaves nothing.
    real.block_on(app.vms().clone().delete("fc1".into(), false))
        .unwrap();
    assert_gone(&app, &adopted);
}

#[test]
fn a_vm_suspends_and_resumes_under_the_real_firecracker() {
    let Some(mut real) = Real::new() else { return };
    let app = real.app_ready_at_once();
    let vm = real
        .block_on(app.vms().clone().create(request("sus"), Reporter::silent()))
        .expect("create up to a running VMM");
    let pid = vm.pid.unwrap();
    let files = vm.files();

    // suspend: pause, a full snapshot next to the disks, the VMM and TAP gone.
    let suspended = real
        .block_on(app.vms().clone().suspend("sus".into()))
        .expect("suspend");
    assert_eq!(suspended.state, VmState::Suspended);
    assert!(exe(pid).is_none(), "the VMM is gone");
    assert!(!links().contains(&vm.tap), "TAP freed:\n{}", links());
    for file in ["vmstate", "memory", "state.json"] {
        assert!(files.saved().join(file).exists(), "saved/{file}");
    }
    assert!(!files.saved_partial().exists());
    let bytes = suspended.saved_state_bytes.expect("saved size shown");
    assert!(bytes > 1 << 20, "{bytes} bytes");

    // It stays suspended across a daemon restart.
    drop(app);
    real.restart_runtime();
    let app = real.app_ready_at_once();
    real.block_on(app.vms().reconcile()).unwrap();
    assert_eq!(
        app.store().resolve_vm("sus").unwrap().state,
        VmState::Suspended
    );

    // A stop without --force would throw the processes away: refused.
    let refused = real.block_on(app.vms().clone().stop("sus".into(), false));
    assert!(
        matches!(refused, Err(VmError::Suspended { .. })),
        "{refused:?}"
    );

    // resume (through start): a new Firecracker loads the snapshot with the
    // TAP and vsock of this boot and runs it.
    let resumed = real
        .block_on(app.vms().clone().start("sus".into(), Reporter::silent()))
        .expect("resume");
    assert_eq!(resumed.state, VmState::Running);
    let new_pid = resumed.pid.unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(exe(new_pid).as_deref(), Some(real.firecracker.as_path()));
    let tap = run(&["ip", "-o", "link", "show", "dev", &resumed.tap]);
    assert!(!tap.contains("NO-CARRIER"), "nobody opened the TAP: {tap}");
    assert!(
        std::fs::metadata(files.vsock()).is_ok(),
        "vsock socket bound again"
    );
    let status = real.block_on(app.vms().vmm_status("sus")).unwrap();
    assert_eq!(
        (status.state.as_str(), status.memory_mib),
        ("Running", Some(256))
    );
    let logged = std::fs::read_to_string(resumed.vmm_log()).unwrap();
    assert!(logged.contains("/snapshot/load"), "{logged}");
    assert!(
        !files.saved().exists() && !files.saved_used().exists(),
        "a used state is removed"
    );

    // A damaged state file: Firecracker refuses it, the VM stays suspended
    // with nothing running, and --force discards it.
    real.block_on(app.vms().clone().suspend("sus".into()))
        .expect("suspend again");
    std::fs::write(files.saved().join("vmstate"), b"not a snapshot").unwrap();
    let failed = real.block_on(app.vms().clone().resume("sus".into(), Reporter::silent()));
    let Err(VmError::Vmm(banger_vmm::VmmError::Restore { reason, .. })) = &failed else {
        panic!("{failed:?}");
    };
    assert!(reason.contains("/snapshot/load"), "{reason}");
    let after = app.store().resolve_vm("sus").unwrap();
    assert_eq!(after.state, VmState::Suspended);
    // (The resume's clock fix over SSH may still be trying: not a VMM.)
    let vmms: Vec<u32> = processes_naming(&after.dir)
        .into_iter()
        .filter(|pid| exe(*pid).as_deref() == Some(real.firecracker.as_path()))
        .collect();
    assert!(vmms.is_empty(), "no VMM left: {vmms:?}");
    assert!(!links().contains(&after.tap));
    let stopped = real
        .block_on(app.vms().clone().stop("sus".into(), true))
        .unwrap();
    assert_eq!(stopped.state, VmState::Stopped);
    assert!(!files.saved().exists(), "discarded");

    real.block_on(app.vms().clone().delete("sus".into(), false))
        .unwrap();
    assert_gone(&app, &after);
}

#[test]
fn a_snapshot_restored_in_another_directory_opens_that_directorys_disks() {
    // What a clone or a warm create needs: the state of one VM continued
    // in another VM's directory, on its disks, TAP and vsock socket.
    let Some(real) = Real::new() else { return };
    let app = real.app_ready_at_once();
    let vm = real
        .block_on(
            app.vms()
                .clone()
                .create(request("orig"), Reporter::silent()),
        )
        .expect("create up to a running VMM");
    real.block_on(app.vms().clone().suspend("orig".into()))
        .expect("suspend");
    let from = vm.files();
    let dir = vm.dir.parent().unwrap().join("relocated");
    std::fs::create_dir_all(dir.join("saved")).unwrap();
    // Sparse copies: the disks are gigabytes of holes.
    for file in ["overlay.ext4", "work.ext4", "saved/vmstate", "saved/memory"] {
        run(&[
            "cp",
            "--sparse=always",
            &from.dir.join(file).display().to_string(),
            &dir.join(file).display().to_string(),
        ]);
    }
    run(&["ip", "tuntap", "add", "dev", "bg-relocated", "mode", "tap"]);
    let image = app.store().get_image(&vm.image).unwrap().unwrap();
    let moved = banger_api::Vm {
        id: "relocated".into(),
        dir: dir.clone(),
        tap: "bg-relocated".into(),
        ..vm.clone()
    };
    let spec = banger_daemon::vms::boot::spec(&moved, &image);
    let firecracker = banger_vmm::firecracker::Firecracker::new(real.firecracker.clone());
    use banger_vmm::Vmm;
    let process = real
        .block_on(firecracker.restore(&spec, &dir.join("saved"), &|_, _| {}))
        .expect("restore in the other directory");
    let open = open_files(process.pid);
    for file in ["overlay.ext4", "work.ext4"] {
        assert!(
            open.contains(&dir.join(file)),
            "{file} of the copy open: {open:?}"
        );
        assert!(
            !open.contains(&from.dir.join(file)),
            "{file} of the source open"
        );
    }
    real.block_on(firecracker.unpause(&dir)).unwrap();
    let status = real.block_on(firecracker.status(&dir)).unwrap();
    assert_eq!(status.state, "Running");
    assert!(
        std::fs::metadata(dir.join("vm.vsock")).is_ok(),
        "its own vsock socket"
    );
    let tap = run(&["ip", "-o", "link", "show", "dev", "bg-relocated"]);
    assert!(
        !tap.contains("NO-CARRIER"),
        "the copy's TAP is the one in use: {tap}"
    );
    real.block_on(banger_host::process::terminate(
        process,
        Duration::from_secs(2),
    ))
    .unwrap();
    run(&["ip", "link", "del", "bg-relocated"]);
    real.block_on(app.vms().clone().delete("orig".into(), true))
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_vmm_that_dies_by_itself_is_recorded_as_stopped_with_its_reason() {
    let Some(real) = Real::new() else { return };
    let app = real.app_ready_at_once();
    let vm = real
        .block_on(
            app.vms()
                .clone()
                .create(request("dies"), Reporter::silent()),
        )
        .unwrap();
    // Where the guest can boot under Firecracker it would not die; then
    // the test ends it (the reason is the same, less the KVM error).
    let stopped = match wait_state(&app, "dies", VmState::Stopped, Duration::from_secs(100)) {
        Some(vm) => {
            let reason = vm.stop_reason.clone().unwrap();
            assert!(reason.contains("KVM_EXIT_INTERNAL_ERROR"), "{reason}");
            vm
        }
        None => {
            eprintln!("the guest did not die by itself here; killing its VMM");
            run(&["kill", "-9", &vm.pid.unwrap().to_string()]);
            wait_state(&app, "dies", VmState::Stopped, Duration::from_secs(10)).unwrap()
        }
    };
    let reason = stopped.stop_reason.clone().unwrap();
    assert!(reason.contains("exited without a stop request"), "{reason}");
    assert_eq!(processes_naming(&vm.dir), Vec::<u32>::new());
    assert!(!links().contains(&vm.tap), "TAP released:\n{}", links());
    real.block_on(app.vms().clone().delete("dies".into(), false))
        .unwrap();
    assert_gone(&app, &vm);
}

#[test]
fn a_create_whose_vmm_dies_while_booting_fails_with_the_vmms_words_and_rolls_back() {
    let Some(real) = Real::new() else { return };
    // The real readiness check: sshd on the guest's address.
    let app = real.app(Arc::new(SshBanner));
    let result = real.block_on(
        app.vms()
            .clone()
            .create(request("boots"), Reporter::silent()),
    );
    match result {
        Err(VmError::ExitedWhileBooting { vmm_log, .. }) => {
            assert!(vmm_log.contains("KVM_EXIT_INTERNAL_ERROR"), "{vmm_log}");
            // A kernel that never got a guest ready is not vouched for.
            let image = app.store().get_image(IMAGE).unwrap().unwrap();
            let sha = banger_daemon::kernels::fingerprint(&image.kernel).unwrap();
            assert_eq!(
                app.store()
                    .kernel_first_ready(&sha, VmmKind::Firecracker)
                    .unwrap(),
                None
            );
            assert!(app.store().list_vms().unwrap().is_empty());
            assert!(app.store().all_resources().unwrap().is_empty());
            assert!(!links().contains("bg-"), "{}", links());
            assert_eq!(processes_naming(real.root.path()), Vec::<u32>::new());
            let vms = Path::new(real.root.path()).join("state/banger/vms");
            let left: Vec<_> = std::fs::read_dir(&vms)
                .map(|d| d.map(|e| e.unwrap().file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "VM directories left: {left:?}");
        }
        Ok(vm) => {
            eprintln!("this host boots the guest under Firecracker");
            real.block_on(app.vms().clone().delete(vm.name.clone(), false))
                .unwrap();
            assert_gone(&app, &vm);
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn twenty_concurrent_creates_each_get_their_own_firecracker() {
    let Some(real) = Real::new() else { return };
    let app = real.app_with(
        Arc::new(banger_testkit::doubles::DelayedProbe::new(
            Duration::from_millis(200),
        )),
        banger_daemon::config::Config {
            default_memory_mib: 128,
            // The pool as users have it.
            tap_pool_size: 2,
            ..real.config()
        },
    );
    let vms = real.block_on(async {
        let creates = (0..20).map(|i| {
            app.vms()
                .clone()
                .create(request(&format!("c{i:02}")), Reporter::silent())
        });
        futures::future::join_all(creates).await
    });
    let vms: Vec<_> = vms
        .into_iter()
        .map(|r| r.expect("each concurrent create succeeds"))
        .collect();
    let mut pids: Vec<u32> = vms.iter().map(|vm| vm.pid.unwrap()).collect();
    let mut ips: Vec<_> = vms.iter().map(|vm| vm.ip).collect();
    pids.sort_unstable();
    pids.dedup();
    ips.sort_unstable();
    ips.dedup();
    assert_eq!((pids.len(), ips.len()), (20, 20));
    for vm in &vms {
        assert!(links().contains(&vm.tap), "{} has its TAP", vm.name);
    }
    let deleted = real.block_on(async {
        let deletes = vms
            .iter()
            .map(|vm| app.vms().clone().delete(vm.name.clone(), true));
        futures::future::join_all(deletes).await
    });
    for result in deleted {
        result.unwrap();
    }
    for vm in &vms {
        assert_gone(&app, vm);
    }
}

#[test]
fn the_fake_answers_each_request_as_the_real_firecracker_does() {
    let Some(firecracker) = firecracker() else {
        return;
    };
    // In order, against one instance of each: what banger sends, and the
    // mistakes the fake must catch as the real one does.
    let script: &[(&str, &str, &str)] = &[
        ("GET", "/", ""),
        ("GET", "/vm/config", ""),
        (
            "PUT",
            "/logger",
            r#"{"log_path": "$DIR/no/such/dir/fc.log", "level": "Info", "show_level": true}"#,
        ),
        (
            "PUT",
            "/logger",
            r#"{"log_path": "$DIR/firecracker.log", "level": "Info", "show_level": true}"#,
        ),
        (
            "PUT",
            "/metrics",
            r#"{"metrics_path": "$DIR/metrics.json"}"#,
        ),
        (
            "PUT",
            "/serial",
            r#"{"serial_out_path": "$DIR/console.log"}"#,
        ),
        (
            "PUT",
            "/machine-config",
            r#"{"vcpu_count": 3, "mem_size_mib": 256, "smt": false}"#,
        ),
        (
            "PUT",
            "/boot-source",
            r#"{"kernel_image_path": "$DIR/no-kernel", "initrd_path": "$DIR/initrd.img"}"#,
        ),
        (
            "PUT",
            "/boot-source",
            r#"{"kernel_image_path": "$DIR/junk-kernel", "initrd_path": "$DIR/no-initrd"}"#,
        ),
        (
            "PUT",
            "/boot-source",
            r#"{"kernel_image_path": "$DIR/junk-kernel", "initrd_path": "$DIR/initrd.img", "boot_args": "console=ttyS0"}"#,
        ),
        (
            "PUT",
            "/drives/rootfs",
            r#"{"drive_id": "rootfs", "path_on_host": "$DIR/no-disk", "is_root_device": false}"#,
        ),
        (
            "PUT",
            "/drives/rootfs",
            r#"{"drive_id": "other", "path_on_host": "$DIR/rootfs.ext4", "is_root_device": false}"#,
        ),
        (
            "PUT",
            "/drives/rootfs",
            r#"{"drive_id": "rootfs", "path_on_host": "$DIR/rootfs.ext4", "is_root_device": false, "is_read_only": true, "cache_type": "Unsafe"}"#,
        ),
        (
            "PUT",
            "/vsock",
            r#"{"guest_cid": 3, "uds_path": "$DIR/taken.sock"}"#,
        ),
        (
            "PUT",
            "/vsock",
            r#"{"guest_cid": 3, "uds_path": "$DIR/no/such/dir/v.sock"}"#,
        ),
        (
            "PUT",
            "/vsock",
            r#"{"guest_cid": 3, "uds_path": "$DIR/vm.vsock"}"#,
        ),
        ("PUT", "/actions", r#"{"action_type": "FlushMetrics"}"#),
        ("PUT", "/actions", r#"{"action_type": "SendCtrlAltDel"}"#),
        (
            "PATCH",
            "/drives/rootfs",
            r#"{"drive_id": "rootfs", "path_on_host": "$DIR/rootfs.ext4"}"#,
        ),
        ("PUT", "/actions", r#"{"action_type": "InstanceStart"}"#),
        ("GET", "/", ""),
        ("GET", "/vm/config", ""),
        // A disk grown under the running guest (a warm create's bigger /root).
        (
            "PATCH",
            "/drives/rootfs",
            r#"{"drive_id": "rootfs", "path_on_host": "$DIR/rootfs.ext4"}"#,
        ),
        (
            "PATCH",
            "/drives/rootfs",
            r#"{"drive_id": "other", "path_on_host": "$DIR/rootfs.ext4"}"#,
        ),
        (
            "PATCH",
            "/drives/nope",
            r#"{"drive_id": "nope", "path_on_host": "$DIR/rootfs.ext4"}"#,
        ),
        (
            "PATCH",
            "/drives/rootfs",
            r#"{"drive_id": "rootfs", "path_on_host": "$DIR/no-disk"}"#,
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let real = Instance::start(&firecracker);
    let fake = Instance::start(Path::new(env!("CARGO_BIN_EXE_fake-firecracker")));
    let mut differences = Vec::new();
    for (method, path, body) in script {
        let (want, got) = runtime.block_on(async {
            (
                real.ask(method, path, body).await,
                fake.ask(method, path, body).await,
            )
        });
        if want != got {
            differences.push(format!(
                "{method} {path} {body}\n  real: {want:?}\n  fake: {got:?}"
            ));
        }
    }
    // Files the real one made at its PUT: the fake makes them too.
    for file in ["firecracker.log", "metrics.json", "vm.vsock"] {
        assert_eq!(
            real.dir.path().join(file).exists(),
            fake.dir.path().join(file).exists(),
            "{file}"
        );
    }
    let violations =
        std::fs::read_to_string(fake.dir.path().join("violations.txt")).unwrap_or_default();
    assert!(violations.is_empty(), "{violations}");
    assert!(
        differences.is_empty(),
        "the fake answers otherwise:\n{}",
        differences.join("\n")
    );
}
