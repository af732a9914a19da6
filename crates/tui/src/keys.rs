//! Keys: UI-only changes happen here on the model; anything that needs the
//! daemon or the terminal comes back as an [`Action`].

use banger_api::VmState;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::model::{Action, CreateForm, Mode, Model, Tab, FORM_FIELDS};

/// The key bindings, for the help overlay and the footer.
pub const HELP: &[(&str, &str)] = &[
    ("↑/↓ j/k", "select"),
    ("Tab 1 2", "VMs / images"),
    ("s", "start the VM"),
    ("x", "stop the VM"),
    ("r", "restart the VM"),
    ("z", "suspend / resume the VM"),
    ("d", "delete (asks first)"),
    ("Enter", "ssh into the VM"),
    ("c", "create a VM"),
    ("/", "filter VMs by name"),
    ("Esc", "close / clear the filter"),
    ("?", "this help"),
    ("q", "quit"),
];

pub fn handle(model: &mut Model, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        model.quit = true;
        return None;
    }
    match model.mode.clone() {
        Mode::Help => {
            model.mode = Mode::Normal;
            None
        }
        Mode::Confirm(action) => {
            model.mode = Mode::Normal;
            matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')).then_some(action)
        }
        Mode::Filter => {
            match key.code {
                KeyCode::Esc => {
                    model.filter.clear();
                    model.mode = Mode::Normal;
                }
                KeyCode::Enter => model.mode = Mode::Normal,
                KeyCode::Backspace => {
                    model.filter.pop();
                }
                KeyCode::Char(c) if !c.is_control() => model.filter.push(c),
                _ => {}
            }
            model.selected_vm = 0;
            model.clamp();
            None
        }
        Mode::Create(form) => form_key(model, form, key),
        Mode::Normal => normal_key(model, key),
    }
}

fn normal_key(model: &mut Model, key: KeyEvent) -> Option<Action> {
    model.message = None;
    let tab = model.tab;
    match key.code {
        KeyCode::Char('q') => model.quit = true,
        KeyCode::Char('?') => model.mode = Mode::Help,
        KeyCode::Tab | KeyCode::BackTab => {
            model.tab = match tab {
                Tab::Vms => Tab::Images,
                Tab::Images => Tab::Vms,
            }
        }
        KeyCode::Char('1') => model.tab = Tab::Vms,
        KeyCode::Char('2') => model.tab = Tab::Images,
        KeyCode::Up | KeyCode::Char('k') => move_selection(model, -1),
        KeyCode::Down | KeyCode::Char('j') => move_selection(model, 1),
        KeyCode::Home | KeyCode::Char('g') => move_selection(model, -10_000),
        KeyCode::End | KeyCode::Char('G') => move_selection(model, 10_000),
        KeyCode::Char('/') if tab == Tab::Vms => model.mode = Mode::Filter,
        KeyCode::Esc => model.filter.clear(),
        KeyCode::Char('c') => {
            model.tab = Tab::Vms;
            model.mode = Mode::Create(CreateForm::default());
        }
        KeyCode::Char('d') if tab == Tab::Images => {
            let image = model.selected_image()?.name.clone();
            model.mode = Mode::Confirm(Action::DeleteImage(image));
        }
        KeyCode::Char(c @ ('s' | 'x' | 'r' | 'd' | 'z')) if tab == Tab::Vms => {
            let vm = model.selected_vm()?;
            let name = vm.name.clone();
            let running = vm.state == VmState::Running;
            match c {
                'z' if running => return Some(Action::Suspend(name)),
                'z' if vm.state == VmState::Suspended => return Some(Action::Resume(name)),
                'z' => {
                    model.message = Some((
                        format!("{name} is {}: only a running VM can be suspended", vm.state),
                        true,
                    ))
                }
                's' if running => {
                    model.message = Some((format!("{name} is already running"), false))
                }
                's' => return Some(Action::Start(name)),
                'x' => return Some(Action::Stop(name)),
                'r' => return Some(Action::Restart(name)),
                _ => model.mode = Mode::Confirm(Action::Delete(name)),
            }
        }
        KeyCode::Enter if tab == Tab::Vms => {
            let vm = model.selected_vm()?;
            if vm.state == VmState::Running {
                return Some(Action::Ssh(vm.name.clone()));
            }
            model.message = Some((
                format!("{} is {}: start it with s first", vm.name, vm.state),
                true,
            ));
        }
        _ => {}
    }
    None
}

fn move_selection(model: &mut Model, by: i64) {
    let vms = model.visible_vms().len();
    let (selected, len) = match model.tab {
        Tab::Vms => (&mut model.selected_vm, vms),
        Tab::Images => (&mut model.selected_image, model.images.len()),
    };
    let max = len.saturating_sub(1);
    let step = usize::try_from(by.unsigned_abs()).unwrap_or(usize::MAX);
    *selected = if by < 0 {
        selected.saturating_sub(step)
    } else {
        selected.saturating_add(step).min(max)
    };
    model.clamp();
}

fn form_key(model: &mut Model, mut form: CreateForm, key: KeyEvent) -> Option<Action> {
    let nat_field = FORM_FIELDS.len();
    match key.code {
        KeyCode::Esc => {
            model.mode = Mode::Normal;
            return None;
        }
        KeyCode::Enter => match form.request() {
            Ok(request) => {
                model.mode = Mode::Normal;
                return Some(Action::Create(request));
            }
            Err(error) => form.error = Some(error),
        },
        KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % (nat_field + 1),
        KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + nat_field) % (nat_field + 1),
        KeyCode::Char(' ') if form.focus == nat_field => form.nat = !form.nat,
        KeyCode::Backspace if form.focus < nat_field => {
            form.values[form.focus].pop();
        }
        KeyCode::Char(c) if form.focus < nat_field && !c.is_control() => {
            form.values[form.focus].push(c);
            form.error = None;
        }
        _ => {}
    }
    model.mode = Mode::Create(form);
    None
}
