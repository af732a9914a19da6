//! Keys drive the model and, through the action runner, a fake daemon: what
//! each key asks of the daemon, confirmations, the filter, the create form.

mod common;

use std::sync::Arc;

use banger_api::CreateVmRequest;
use banger_tui::actions;
use banger_tui::fleet::Fleet;
use banger_tui::keys::handle;
use banger_tui::model::{Action, Mode, Model, Msg, Tab};
use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

/// Presses keys; runs any action against the fleet and applies the outcome.
async fn press(m: &mut Model, fleet: &Arc<FakeFleet>, keys: &[KeyEvent]) -> Vec<Action> {
    let mut actions = Vec::new();
    for k in keys {
        if let Some(action) = handle(m, *k) {
            actions.push(action.clone());
            if matches!(action, Action::Ssh(_)) {
                continue;
            }
            let id = m.begin(&action);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let dyn_fleet: Arc<dyn Fleet> = fleet.clone();
            actions::perform(dyn_fleet, action, id, tx).await;
            while let Ok(msg) = rx.try_recv() {
                m.apply(msg);
            }
        }
    }
    actions
}

fn setup() -> (Model, Arc<FakeFleet>) {
    let fleet = Arc::new(FakeFleet::default());
    *fleet.snapshot.lock().unwrap() = fleet_snapshot();
    (loaded(true), fleet)
}

#[tokio::test]
async fn lifecycle_keys_act_on_the_selected_vm() {
    let (mut m, fleet) = setup();
    // db (stopped) is selected: s starts it.
    press(&mut m, &fleet, &[ch('s')]).await;
    assert_eq!(fleet.calls(), ["start db"]);
    assert_eq!(m.message, Some(("db is running".into(), false)));
    // j j: web; x stops, r restarts; s on a running VM only says so.
    press(
        &mut m,
        &fleet,
        &[ch('j'), ch('j'), ch('x'), ch('r'), ch('s')],
    )
    .await;
    assert_eq!(fleet.calls(), ["start db", "stop web", "restart web"]);
    assert_eq!(m.message, Some(("web is already running".into(), false)));
    // Selection stays inside the list.
    press(&mut m, &fleet, &[ch('j'), ch('j'), ch('j')]).await;
    assert_eq!(m.selected_vm().unwrap().name, "web");
    press(&mut m, &fleet, &[ch('g')]).await;
    assert_eq!(m.selected_vm().unwrap().name, "db");
}

#[tokio::test]
async fn z_suspends_a_running_vm_and_resumes_a_suspended_one() {
    let (mut m, fleet) = setup();
    // db is stopped: nothing to suspend, and it says why.
    press(&mut m, &fleet, &[ch('z')]).await;
    assert!(fleet.calls().is_empty());
    let (said, error) = m.message.clone().unwrap();
    assert!(error && said.contains("only a running VM"), "{said}");
    // web runs: z suspends it.
    press(&mut m, &fleet, &[ch('j'), ch('j'), ch('z')]).await;
    assert_eq!(fleet.calls(), ["suspend web"]);
    // Once the list shows it suspended, z resumes it.
    let web = m.vms.iter_mut().find(|vm| vm.name == "web").unwrap();
    web.state = banger_api::VmState::Suspended;
    press(&mut m, &fleet, &[ch('z')]).await;
    assert_eq!(fleet.calls(), ["suspend web", "resume web"]);
}

#[tokio::test]
async fn delete_asks_first() {
    let (mut m, fleet) = setup();
    press(&mut m, &fleet, &[ch('d')]).await;
    assert_eq!(m.mode, Mode::Confirm(Action::Delete("db".into())));
    press(&mut m, &fleet, &[ch('n')]).await;
    assert_eq!(m.mode, Mode::Normal);
    assert!(fleet.calls().is_empty(), "n keeps the VM");
    press(&mut m, &fleet, &[ch('d'), ch('y')]).await;
    assert_eq!(fleet.calls(), ["delete db"]);
    assert_eq!(m.message, Some(("db deleted".into(), false)));
}

#[tokio::test]
async fn failures_are_shown_not_fatal() {
    let (mut m, fleet) = setup();
    *fleet.fail.lock().unwrap() = Some("VM db is stopped (hint: start it)".into());
    press(&mut m, &fleet, &[ch('x')]).await;
    let (text, error) = m.message.clone().unwrap();
    assert!(
        error && text.contains("stopping db") && text.contains("hint"),
        "{text}"
    );
    assert!(m.tasks.is_empty());
}

#[tokio::test]
async fn enter_opens_ssh_only_for_running_vms() {
    let (mut m, fleet) = setup();
    assert!(press(&mut m, &fleet, &[key(KeyCode::Enter)])
        .await
        .is_empty());
    assert!(m.message.clone().unwrap().0.contains("start it with s"));
    let actions = press(&mut m, &fleet, &[ch('G'), key(KeyCode::Enter)]).await;
    assert_eq!(actions, [Action::Ssh("web".into())]);
}

#[tokio::test]
async fn the_filter_narrows_the_table() {
    let (mut m, fleet) = setup();
    press(&mut m, &fleet, &[ch('/'), ch('w'), ch('e')]).await;
    assert_eq!(m.mode, Mode::Filter);
    assert_eq!(m.visible_vms().len(), 1);
    press(&mut m, &fleet, &[key(KeyCode::Enter)]).await;
    assert_eq!(m.selected_vm().unwrap().name, "web");
    // Keys act on the filtered row.
    press(&mut m, &fleet, &[ch('x')]).await;
    assert_eq!(fleet.calls(), ["stop web"]);
    press(&mut m, &fleet, &[key(KeyCode::Esc)]).await;
    assert_eq!(m.visible_vms().len(), 3);
    // A filter that matches nothing: keys do nothing.
    press(
        &mut m,
        &fleet,
        &[ch('/'), ch('z'), key(KeyCode::Enter), ch('x')],
    )
    .await;
    assert_eq!(fleet.calls(), ["stop web"]);
}

#[tokio::test]
async fn the_create_form_validates_then_creates() {
    let (mut m, fleet) = setup();
    let typed = |s: &str| s.chars().map(ch).collect::<Vec<_>>();
    press(&mut m, &fleet, &[ch('c')]).await;
    press(&mut m, &fleet, &typed("Bad Name")).await;
    press(&mut m, &fleet, &[key(KeyCode::Enter)]).await;
    let Mode::Create(form) = &m.mode else {
        panic!("form closed on bad input")
    };
    assert!(
        form.error.as_ref().unwrap().contains("invalid name"),
        "{form:?}"
    );
    assert!(fleet.calls().is_empty());

    // Fix the name; memory 2048; NAT on.
    press(&mut m, &fleet, &[key(KeyCode::Backspace); 8]).await;
    press(&mut m, &fleet, &typed("web2")).await;
    press(&mut m, &fleet, &[key(KeyCode::Tab), key(KeyCode::Tab)]).await;
    press(&mut m, &fleet, &typed("2048")).await;
    press(
        &mut m,
        &fleet,
        &[
            key(KeyCode::BackTab),
            key(KeyCode::BackTab),
            key(KeyCode::BackTab),
        ],
    )
    .await;
    press(&mut m, &fleet, &[ch(' ')]).await;
    let actions = press(&mut m, &fleet, &[key(KeyCode::Enter)]).await;
    let expected = CreateVmRequest {
        name: Some("web2".into()),
        memory_mib: Some(2048),
        nat: true,
        ..Default::default()
    };
    assert_eq!(actions, [Action::Create(expected.clone())]);
    assert_eq!(fleet.calls(), [format!("create {expected:?}")]);
    assert_eq!(m.mode, Mode::Normal);
    assert!(m.message.clone().unwrap().0.contains("web2 is running"));

    // Esc cancels without creating.
    press(&mut m, &fleet, &[ch('c'), ch('x'), key(KeyCode::Esc)]).await;
    assert_eq!(fleet.calls().len(), 1);
}

#[tokio::test]
async fn images_tab_deletes_with_confirmation() {
    let (mut m, fleet) = setup();
    press(&mut m, &fleet, &[key(KeyCode::Tab)]).await;
    assert_eq!(m.tab, Tab::Images);
    // VM keys do nothing here: no VM is visible to act on.
    press(
        &mut m,
        &fleet,
        &[ch('s'), ch('x'), ch('r'), key(KeyCode::Enter)],
    )
    .await;
    assert!(fleet.calls().is_empty(), "{:?}", fleet.calls());
    press(&mut m, &fleet, &[ch('d'), ch('y')]).await;
    assert_eq!(fleet.calls(), ["delete-image default"]);
    press(&mut m, &fleet, &[ch('1')]).await;
    assert_eq!(m.tab, Tab::Vms);
}

#[tokio::test]
async fn help_and_quit() {
    let (mut m, fleet) = setup();
    press(&mut m, &fleet, &[ch('?')]).await;
    assert_eq!(m.mode, Mode::Help);
    press(&mut m, &fleet, &[ch('x')]).await;
    assert_eq!(m.mode, Mode::Normal, "any key closes help");
    assert!(fleet.calls().is_empty(), "and does nothing else");
    press(&mut m, &fleet, &[ch('q')]).await;
    assert!(m.quit);
    let (mut m, _) = setup();
    handle(
        &mut m,
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    );
    assert!(m.quit);
}

#[tokio::test]
async fn the_snapshot_asks_for_everything() {
    let fleet = Arc::new(FakeFleet::default());
    *fleet.snapshot.lock().unwrap() = fleet_snapshot();
    let dyn_fleet: Arc<dyn Fleet> = fleet.clone();
    let snap = actions::snapshot(&dyn_fleet).await.unwrap();
    assert_eq!(snap.vms.len(), 3);
    assert_eq!(snap.stats.len(), 1, "only web has stats");
    assert_eq!(snap.ports.keys().collect::<Vec<_>>(), ["web"]);
    let asked: Vec<String> = fleet
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("ports "))
        .collect();
    assert_eq!(asked, ["ports web"], "ports are asked of running VMs only");
    let mut m = model(true);
    m.selected_vm = 2;
    m.apply(Msg::Refreshed(Ok(snap)));
    assert_eq!(m.images.len(), 1);
}
