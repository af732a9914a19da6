//! The capability pipeline through the daemon's real orchestration (fake
//! Firecracker, in-memory network model): NAT rules and DNS records follow
//! create, `vm set --nat/--no-nat`, stop, start and delete; the warm TAP
//! pool serves creates and refills; reconcile removes stale NAT rules,
//! restores missing ones and rebuilds DNS after a restart.

mod common;

use std::time::Duration;

use banger_api::{CreateVmRequest, UpdateVmRequest, Vm};
use banger_daemon::app::App;
use banger_daemon::caps::CapError;
use banger_daemon::progress::Reporter;
use banger_daemon::vms::VmError;
use banger_host::privileged::{NatRule, Op};
use common::*;

async fn make(app: &std::sync::Arc<App>, name: &str, nat: bool) -> Vm {
    app.vms()
        .clone()
        .create(
            CreateVmRequest {
                name: Some(name.into()),
                nat,
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap()
}

fn nat(value: bool) -> UpdateVmRequest {
    UpdateVmRequest {
        nat: Some(value),
        ..Default::default()
    }
}

async fn pool_reaches(app: &App, n: usize) {
    for _ in 0..200 {
        if app.tap_pool().idle_count() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the TAP pool never reached {n} idle TAPs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_dns_and_the_tap_pool_follow_the_lifecycle() {
    let d = daemon(Duration::from_millis(50));
    let app = d.app.clone();
    tokio::spawn(app.tap_pool().clone().run());
    let names = || async { app.dns().names().await };

    // The first create makes its own TAP (the pool starts once a bridge exists).
    let web = make(&app, "web", true).await;
    assert_eq!(web.tap, format!("bg-{}", web.id));
    assert_eq!(d.net.nat_tags(), [format!("banger-{}", web.id)]);
    let rule = d.net.nat.lock().unwrap()[&format!("banger-{}", web.id)].clone();
    assert_eq!(
        rule,
        NatRule {
            tag: format!("banger-{}", web.id),
            source: web.ip,
            bridge: "banger0".into(),
        }
    );
    assert!(*d.net.forwarding.lock().unwrap(), "ip_forward enabled");
    assert_eq!(names().await, ["web.vm."]);

    // The pool fills in the background; the next create takes a warm TAP.
    pool_reaches(&app, 2).await;
    let created = d.net.taps_created();
    let db = make(&app, "db", false).await;
    assert!(db.tap.starts_with("bgp-"), "{}", db.tap);
    assert_eq!(
        d.net.taps_created(),
        created + 1,
        "only the refill made a TAP"
    );
    pool_reaches(&app, 2).await;
    assert_eq!(d.net.nat_tags().len(), 1, "db has no NAT");
    assert_eq!(names().await, ["db.vm.", "web.vm."]);

    // NAT on and off on a running VM.
    app.vms()
        .clone()
        .update("db".into(), nat(true))
        .await
        .unwrap();
    assert!(d.net.nat_tags().contains(&format!("banger-{}", db.id)));
    let off = app
        .vms()
        .clone()
        .update("db".into(), nat(false))
        .await
        .unwrap();
    assert!(!off.nat);
    assert!(!d.net.nat_tags().contains(&format!("banger-{}", db.id)));

    // Stop removes the rules and the record; NAT stays a setting of the VM.
    let web = app.vms().clone().stop("web".into(), false).await.unwrap();
    assert!(web.nat);
    assert!(d.net.nat_tags().is_empty());
    assert_eq!(names().await, ["db.vm."]);
    assert!(!d.net.taps().contains(&web.tap), "TAP removed on stop");
    // Setting NAT on a stopped VM changes nothing on the host until it starts.
    let ops = d.net.ops.lock().unwrap().len();
    let off = app
        .vms()
        .clone()
        .update("web".into(), nat(false))
        .await
        .unwrap();
    assert!(
        !off.nat && !app.store().resolve_vm("web").unwrap().nat,
        "stored"
    );
    app.vms()
        .clone()
        .update("web".into(), nat(true))
        .await
        .unwrap();
    let nat_ops = d.net.ops.lock().unwrap()[ops..]
        .iter()
        .filter(|op| matches!(op, Op::AddNat(_) | Op::RemoveNat { .. }))
        .count();
    assert_eq!(nat_ops, 0, "no NAT change on the host for a stopped VM");
    let web = app
        .vms()
        .clone()
        .start("web".into(), Reporter::silent())
        .await
        .unwrap();
    assert_eq!(d.net.nat_tags(), [format!("banger-{}", web.id)]);
    assert!(web.tap.starts_with("bgp-"), "start takes a warm TAP too");

    // A daemon restart: a rule lost meanwhile is restored, a stale one
    // (a VM deleted while the daemon was down) is removed, DNS is rebuilt,
    // the old pool's idle TAPs are removed and the VMs' TAPs kept.
    d.net.nat.lock().unwrap().clear();
    d.net.nat.lock().unwrap().insert(
        "banger-0000dead0000".into(),
        NatRule {
            tag: "banger-0000dead0000".into(),
            source: "172.30.0.200".parse().unwrap(),
            bridge: "banger0".into(),
        },
    );
    let old_idle: Vec<String> = d
        .net
        .taps()
        .into_iter()
        .filter(|t| *t != web.tap && *t != db.tap)
        .collect();
    assert_eq!(old_idle.len(), 2);
    let app = restart(&d.root, d.net.clone(), Duration::from_millis(50));
    app.vms().reconcile().await.unwrap();
    assert_eq!(d.net.nat_tags(), [format!("banger-{}", web.id)]);
    assert_eq!(app.dns().names().await, ["db.vm.", "web.vm."]);
    let taps = d.net.taps();
    assert!(taps.contains(&web.tap) && taps.contains(&db.tap));
    assert!(old_idle.iter().all(|t| !taps.contains(t)), "{taps:?}");

    // Delete leaves no rule, record or TAP of either VM.
    for name in ["web", "db"] {
        app.vms().clone().delete(name.into(), false).await.unwrap();
    }
    assert!(d.net.nat_tags().is_empty());
    assert!(app.dns().names().await.is_empty());
    assert!(d.net.taps().is_empty(), "{:?}", d.net.taps());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_without_a_default_route_fails_clearly_and_leaves_nothing() {
    let d = daemon(Duration::from_millis(50));
    *d.net.no_uplink.lock().unwrap() = true;
    let err = d
        .app
        .vms()
        .clone()
        .create(
            CreateVmRequest {
                name: Some("lonely".into()),
                nat: true,
                ..Default::default()
            },
            Reporter::silent(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, VmError::Cap(CapError::NoUplink { ref vm }) if vm == "lonely"),
        "{err:?}"
    );
    assert!(d.app.store().list_vms().unwrap().is_empty(), "rolled back");
    assert!(d.net.taps().is_empty());
    assert!(d.net.nat_tags().is_empty());

    // Without NAT the same VM is fine, and switching NAT on is refused
    // with the setting left as it was.
    make(&d.app, "lonely", false).await;
    let err = d
        .app
        .vms()
        .clone()
        .update("lonely".into(), nat(true))
        .await
        .unwrap_err();
    assert!(
        matches!(err, VmError::Cap(CapError::NoUplink { .. })),
        "{err:?}"
    );
    assert!(!d.app.store().resolve_vm("lonely").unwrap().nat);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_tap_left_off_the_bridge_is_replaced_not_used() {
    let d = daemon(Duration::from_millis(50));
    let app = d.app.clone();
    tokio::spawn(app.tap_pool().clone().run());
    make(&app, "first", false).await;
    pool_reaches(&app, 2).await;
    // Someone recreated the bridge: the idle TAPs are no longer on it.
    let idle: Vec<String> = d
        .net
        .taps()
        .into_iter()
        .filter(|t| t.starts_with("bgp-"))
        .collect();
    d.net.detached.lock().unwrap().extend(idle.iter().cloned());
    let vm = make(&app, "second", false).await;
    assert!(!idle.contains(&vm.tap), "got a detached TAP: {}", vm.tap);
    for tap in &idle {
        assert!(!d.net.taps().contains(tap), "detached {tap} removed");
    }
    assert!(app
        .store()
        .all_resources()
        .unwrap()
        .iter()
        .all(|r| !idle.contains(&r.value)));
}
