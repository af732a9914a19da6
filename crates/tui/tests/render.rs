//! What the TUI draws in typical states, at 80×24 and other sizes, with
//! and without colour. Snapshots live in tests/snapshots/.

mod common;

use banger_api::CreateVmRequest;
use banger_tui::model::{Action, Connection, CreateForm, Mode, Msg, Tab};
use common::*;

#[test]
fn empty_fleet() {
    let mut m = model(true);
    let screen = render(&m, 80, 24);
    assert!(screen.contains("connecting to bangerd"), "{screen}");
    m.apply(Msg::Refreshed(Ok(Default::default())));
    let screen = render(&m, 80, 24);
    assert!(
        screen.contains("No VMs yet. Press c to create one."),
        "{screen}"
    );
    assert_snapshot("empty", &screen);
}

#[test]
fn several_vms_with_details() {
    let m = loaded(true);
    let screen = render(&m, 80, 24);
    // Sorted by name, the first is selected and detailed.
    let db = screen.find("> db").expect("db selected");
    assert!(db < screen.find("scratch").unwrap() && db < screen.find(" web ").unwrap());
    for text in [
        "stopped",
        "creating",
        "running",
        "172.30.0.2",
        "1.2G/8.0G",
        "3m",
        "on",
    ] {
        assert!(screen.contains(text), "{text} missing:\n{screen}");
    }
    assert!(
        screen.contains("stopped because the VMM process exited"),
        "{screen}"
    );
    assert!(screen.contains("dns db.vm"), "{screen}");
    assert!(screen.lines().all(|l| l.chars().count() <= 80));
    assert_snapshot("vms", &screen);
}

#[test]
fn the_running_vm_shows_its_console_and_rss() {
    let mut m = loaded(true);
    m.selected_vm = 2;
    m.console = vec!["Debian GNU/Linux 12 web ttyS0".into(), "web login:".into()];
    let screen = render(&m, 80, 24);
    assert!(screen.contains("VMM rss 300"), "{screen}");
    assert!(screen.contains("web login:"), "{screen}");
    assert_snapshot("vm-console", &screen);
}

#[test]
fn an_unreachable_daemon_is_explained() {
    let mut m = loaded(true);
    m.apply(Msg::Refreshed(Err("connection refused".into())));
    assert_eq!(
        m.connection,
        Connection::Unreachable("connection refused".into())
    );
    let screen = render(&m, 80, 24);
    assert!(screen.contains("bangerd is not reachable"), "{screen}");
    assert!(
        screen.contains("connection refused") && screen.contains("Retrying"),
        "{screen}"
    );
    assert_snapshot("unreachable", &screen);
    // It comes back by itself.
    m.apply(Msg::Refreshed(Ok(fleet_snapshot())));
    assert!(render(&m, 80, 24).contains("> db"));
}

#[test]
fn overlays_help_confirm_and_create() {
    let mut m = loaded(true);
    m.mode = Mode::Help;
    let screen = render(&m, 80, 24);
    assert!(
        screen.contains("ssh into the VM") && screen.contains("quit"),
        "{screen}"
    );
    assert_snapshot("help", &screen);

    m.mode = Mode::Confirm(Action::Delete("db".into()));
    let screen = render(&m, 80, 24);
    assert!(screen.contains("Delete VM db?"), "{screen}");
    assert_snapshot("confirm", &screen);

    m.mode = Mode::Create(CreateForm {
        values: [
            "web2".into(),
            String::new(),
            "lots".into(),
            String::new(),
            String::new(),
        ],
        focus: 2,
        error: Some("memory MiB must be a whole number, not \"lots\"".into()),
        ..Default::default()
    });
    let screen = render(&m, 80, 24);
    assert!(
        screen.contains("create a VM") && screen.contains("web2"),
        "{screen}"
    );
    assert!(screen.contains("whole number"), "{screen}");
    assert_snapshot("create-form", &screen);
}

#[test]
fn progress_and_outcomes_show_in_the_status_line() {
    let mut m = loaded(true);
    let id = m.begin(&Action::Create(CreateVmRequest {
        name: Some("web2".into()),
        ..Default::default()
    }));
    m.apply(Msg::Progress {
        id,
        message: "booting the guest".into(),
        fraction: Some(0.86),
    });
    let screen = render(&m, 80, 24);
    assert!(
        screen.contains("creating web2: booting the guest (86%)"),
        "{screen}"
    );
    m.apply(Msg::Done {
        id,
        result: Err("stopping db: VM db is stopped".into()),
    });
    assert!(render(&m, 80, 24).contains("error: stopping db"));
}

#[test]
fn images_tab() {
    let mut m = loaded(true);
    m.tab = Tab::Images;
    let screen = render(&m, 80, 24);
    for text in [
        "default",
        "managed",
        "6.1.0-28-cloud-amd64",
        "used by",
        "db, scratch, web",
    ] {
        assert!(screen.contains(text), "{text} missing:\n{screen}");
    }
    assert_snapshot("images", &screen);
}

#[test]
fn wide_terminals_show_dns_names_and_small_ones_do_not_break() {
    let m = loaded(true);
    let wide = render(&m, 120, 30);
    assert!(wide.contains("172.30.0.2 web.vm"), "{wide}");
    for (w, h) in [(40, 10), (20, 5), (80, 8), (200, 60)] {
        let screen = render(&m, w, h);
        assert_eq!(screen.lines().count(), h as usize);
    }
}

#[test]
fn no_color_means_no_colour() {
    let mut m = loaded(false);
    assert!(!has_color(&m));
    m.mode = Mode::Help;
    assert!(!has_color(&m));
    // With colour, states are coloured.
    assert!(has_color(&loaded(true)));
    // Without colour the selection is still visible.
    assert!(render(&loaded(false), 80, 24).contains("> db"));
}
