//! Fixtures shared by the TUI tests: VMs, images, a fake fleet that records
//! what it was asked, and a model rendered to text.

#![allow(dead_code)]

use std::sync::Mutex;

use async_trait::async_trait;
use banger_api::agent::{DiskUse, GuestStats};
use banger_api::{CreateVmRequest, Image, Vm, VmPort, VmState, VmStats, VmmKind};
use banger_tui::fleet::{Fleet, OnProgress, Result};
use banger_tui::model::{Model, Msg, Snapshot};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use time::macros::datetime;

pub fn vm(name: &str, state: VmState, ip: &str) -> Vm {
    Vm {
        id: format!("{:0>12}", name.len()),
        name: name.into(),
        state,
        image: "default".into(),
        vmm: VmmKind::Qemu,
        accel: banger_api::Accel::Tcg,
        vcpu: 2,
        memory_mib: 1024,
        disk_size_bytes: 8 << 30,
        overlay_size_bytes: 4 << 30,
        nat: false,
        ip: ip.parse().unwrap(),
        mac: "52:54:00:00:00:01".parse().unwrap(),
        tap: "bg-000000000001".into(),
        pid: (state == VmState::Running).then_some(4242),
        created_at: datetime!(2026-11-29 08:00:00 UTC),
        started_at: (state == VmState::Running).then_some(datetime!(2026-11-29 08:57:00 UTC)),
        stop_reason: None,
        stopped_at: None,
        saved_state_bytes: None,
        warm: false,
        dir: "/nonexistent/vm".into(),
    }
}

pub fn image(name: &str) -> Image {
    Image {
        name: name.into(),
        managed: true,
        rootfs: format!("/var/lib/banger/images/{name}/rootfs.ext4").into(),
        kernel: format!("/var/lib/banger/images/{name}/vmlinux").into(),
        initrd: format!("/var/lib/banger/images/{name}/initrd.img").into(),
        kernel_version: "6.1.0-28-cloud-amd64".into(),
        work_seed: Some(format!("/var/lib/banger/images/{name}/work-seed").into()),
        packages_sha256: "0123456789abcdef0123".into(),
        agent: true,
        agent_serial: true,
        warm: false,
        created_at: datetime!(2026-11-28 10:00:00 UTC),
    }
}

/// Three VMs in different states, stats for the running ones, one image.
pub fn fleet_snapshot() -> Snapshot {
    let mut web = vm("web", VmState::Running, "172.30.0.2");
    web.nat = true;
    let mut db = vm("db", VmState::Stopped, "172.30.0.3");
    db.stop_reason = Some("the VMM process exited without a stop request".into());
    let new = vm("scratch", VmState::Creating, "172.30.0.4");
    Snapshot {
        stats: vec![VmStats {
            name: "web".into(),
            state: VmState::Running,
            pid: Some(4242),
            cpu_percent: Some(3.0),
            rss_bytes: Some(300 << 20),
            uptime_secs: Some(180),
            overlay_used_bytes: 10 << 20,
            overlay_size_bytes: 4 << 30,
            work_used_bytes: 1200 << 20,
            work_size_bytes: 8 << 30,
            guest: Some(GuestStats {
                load: [0.25, 0.1, 0.05],
                memory_total_bytes: 1000 << 20,
                memory_available_bytes: 800 << 20,
                disks: vec![DiskUse {
                    path: "/root".into(),
                    total_bytes: 8 << 30,
                    used_bytes: 1 << 30,
                }],
            }),
            vmm_metrics: None,
            guest_error: None,
        }],
        vms: vec![web, db, new],
        images: vec![image("default")],
        ports: [(
            "web".to_string(),
            vec![
                port("web", 22, None, "sshd"),
                port("web", 8000, Some("http"), "python3"),
            ],
        )]
        .into(),
    }
}

fn port(vm: &str, number: u16, web: Option<&str>, process: &str) -> VmPort {
    VmPort {
        listener: banger_api::agent::Listener {
            protocol: "tcp".into(),
            address: "0.0.0.0".into(),
            port: number,
            pid: Some(100),
            process: Some(process.into()),
            command: None,
        },
        endpoint: format!("{vm}.vm:{number}"),
        ip_endpoint: format!("172.30.0.2:{number}"),
        web: web.map(String::from),
        url: web.map(|scheme| format!("{scheme}://{vm}.vm:{number}/")),
    }
}

/// A model at a fixed time, so uptimes render the same on every run.
pub fn model(color: bool) -> Model {
    let mut m = Model::new("/run/user/0/banger/bangerd.sock", color);
    m.now = datetime!(2026-11-29 09:00:00 UTC);
    m
}

pub fn loaded(color: bool) -> Model {
    let mut m = model(color);
    m.apply(Msg::Refreshed(Ok(fleet_snapshot())));
    m
}

/// The screen as text, one line per row.
pub fn render(model: &Model, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| banger_tui::ui::draw(f, model)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Whether any cell has a colour (for NO_COLOR).
pub fn has_color(model: &Model) -> bool {
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal.draw(|f| banger_tui::ui::draw(f, model)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    buffer
        .content
        .iter()
        .any(|c| c.fg != ratatui::style::Color::Reset || c.bg != ratatui::style::Color::Reset)
}

/// Compares with `tests/snapshots/<name>.txt`; `UPDATE_SNAPSHOTS=1` writes
/// it instead. A missing snapshot fails.
pub fn assert_snapshot(name: &str, screen: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    // Snapshots are written only when asked: a missing one is a failure,
    // never a pass that records whatever the screen happened to show.
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, screen).unwrap();
        return;
    }
    assert!(
        path.exists(),
        "no snapshot {}; review the screen below, then run with UPDATE_SNAPSHOTS=1 to record it:\n{screen}",
        path.display()
    );
    let expected = std::fs::read_to_string(&path).unwrap();
    assert!(
        expected == screen,
        "screen differs from {}:\n--- expected\n{expected}\n--- got\n{screen}",
        path.display()
    );
}

/// A fleet that records every call and answers from a snapshot; actions
/// can be made to fail.
#[derive(Default)]
pub struct FakeFleet {
    pub calls: Mutex<Vec<String>>,
    pub fail: Mutex<Option<String>>,
    pub snapshot: Mutex<Snapshot>,
}

impl FakeFleet {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) -> Result<()> {
        self.calls.lock().unwrap().push(call);
        match self.fail.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn vm(&self, name: &str) -> Vm {
        vm(name, VmState::Running, "172.30.0.9")
    }
}

#[async_trait]
impl Fleet for FakeFleet {
    async fn list_vms(&self) -> Result<Vec<Vm>> {
        Ok(self.snapshot.lock().unwrap().vms.clone())
    }
    async fn vm_stats(&self, name: &str) -> Result<VmStats> {
        self.snapshot
            .lock()
            .unwrap()
            .stats
            .iter()
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| "no stats".to_string())
    }
    async fn vm_ports(&self, name: &str) -> Result<Vec<VmPort>> {
        self.calls.lock().unwrap().push(format!("ports {name}"));
        self.snapshot
            .lock()
            .unwrap()
            .ports
            .get(name)
            .cloned()
            .ok_or_else(|| "the guest agent is not answering".to_string())
    }
    async fn list_images(&self) -> Result<Vec<Image>> {
        Ok(self.snapshot.lock().unwrap().images.clone())
    }
    async fn create(&self, request: &CreateVmRequest, on: OnProgress<'_>) -> Result<Vm> {
        on(&banger_api::Progress {
            stage: "vm.boot".into(),
            message: "booting the guest".into(),
            fraction: Some(0.86),
        });
        self.record(format!("create {request:?}"))?;
        Ok(self.vm(request.name.as_deref().unwrap_or("generated")))
    }
    async fn start(&self, name: &str, _on: OnProgress<'_>) -> Result<Vm> {
        self.record(format!("start {name}"))?;
        Ok(self.vm(name))
    }
    async fn restart(&self, name: &str, _on: OnProgress<'_>) -> Result<Vm> {
        self.record(format!("restart {name}"))?;
        Ok(self.vm(name))
    }
    async fn stop(&self, name: &str) -> Result<Vm> {
        self.record(format!("stop {name}"))?;
        Ok(self.vm(name))
    }
    async fn suspend(&self, name: &str) -> Result<Vm> {
        self.record(format!("suspend {name}"))?;
        Ok(self.vm(name))
    }
    async fn resume(&self, name: &str, _on: OnProgress<'_>) -> Result<Vm> {
        self.record(format!("resume {name}"))?;
        Ok(self.vm(name))
    }
    async fn delete(&self, name: &str) -> Result<Vm> {
        self.record(format!("delete {name}"))?;
        Ok(self.vm(name))
    }
    async fn delete_image(&self, name: &str) -> Result<Image> {
        self.record(format!("delete-image {name}"))?;
        Ok(image(name))
    }
    async fn ssh_target(&self, name: &str) -> Result<banger_api::SshTarget> {
        self.record(format!("ssh {name}"))?;
        Ok(banger_api::SshTarget {
            name: name.into(),
            ip: "172.30.0.9".parse().unwrap(),
            user: "root".into(),
            key_path: "/k".into(),
            known_hosts_path: "/kh".into(),
            host_key_alias: format!("banger-{name}"),
        })
    }
}
