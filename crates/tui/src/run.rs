//! The terminal loop: draw, read keys, apply messages from background work,
//! refresh from the daemon every two seconds, and hand the terminal to
//! `ssh` (with the same arguments `banger vm ssh` uses) when asked.

use std::io::Stdout;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossterm::event::{self, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::fleet::Fleet;
use crate::model::{Action, Model, Msg};
use crate::{actions, keys, ui};

const REFRESH: Duration = Duration::from_secs(2);

pub struct Options {
    pub fleet: Arc<dyn Fleet>,
    pub socket: String,
    /// False under `NO_COLOR`.
    pub color: bool,
}

type Term = Terminal<CrosstermBackend<Stdout>>;

fn enter() -> anyhow::Result<Term> {
    enable_raw_mode().context("the terminal does not support raw mode")?;
    let entered = execute!(std::io::stdout(), EnterAlternateScreen)
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(Terminal::new(CrosstermBackend::new(std::io::stdout()))?));
    if entered.is_err() {
        let _ = disable_raw_mode();
    }
    entered
}

fn leave(terminal: &mut Term) {
    let _ = disable_raw_mode();
    let _ = execute!(terminal.backend_mut(), LeaveAlternateScreen);
    let _ = terminal.show_cursor();
}

/// Runs the TUI until the user quits. Must be called inside a tokio runtime
/// (on a blocking-capable thread: the loop itself is synchronous).
pub fn run(options: Options) -> anyhow::Result<()> {
    let handle = tokio::runtime::Handle::current();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut model = Model::new(options.socket.clone(), options.color);
    let mut terminal = enter()?;
    // Restore the terminal if this loop panics. A panic in a background
    // task is caught by tokio and must not touch the screen the loop owns.
    let tui_thread = std::thread::current().id();
    let previous = Arc::new(std::panic::take_hook());
    let chained = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == tui_thread {
            let _ = disable_raw_mode();
            let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
        }
        chained(info);
    }));

    let refresh_now = Arc::new(tokio::sync::Notify::new());
    {
        let (fleet, tx, wake) = (options.fleet.clone(), tx.clone(), refresh_now.clone());
        handle.spawn(async move {
            loop {
                if tx
                    .send(Msg::Refreshed(actions::snapshot(&fleet).await))
                    .is_err()
                {
                    return;
                }
                let _ = tokio::time::timeout(REFRESH, wake.notified()).await;
            }
        });
    }

    let mut console_of: Option<(String, Instant)> = None;
    let result = loop {
        while let Ok(msg) = rx.try_recv() {
            let done = matches!(msg, Msg::Done { .. });
            model.apply(msg);
            if done {
                refresh_now.notify_one();
            }
        }
        model.now = time::OffsetDateTime::now_utc();
        load_console(&mut model, &mut console_of);
        if let Err(e) = terminal.draw(|frame| ui::draw(frame, &model)) {
            break Err(e.into());
        }
        if model.quit {
            break Ok(());
        }
        match event::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => break Err(e.into()),
        }
        let key = match event::read() {
            Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => key,
            Ok(_) => continue, // resize: the next draw fits the new size
            Err(e) => break Err(e.into()),
        };
        match keys::handle(&mut model, key) {
            None => {}
            Some(Action::Ssh(name)) => {
                // Asked on the runtime; this loop is not async.
                let (tx, rx) = std::sync::mpsc::channel();
                let fleet = options.fleet.clone();
                let asked = name.clone();
                handle.spawn(async move {
                    let _ = tx.send(fleet.ssh_target(&asked).await);
                });
                let target = rx
                    .recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|_| Err("the daemon did not answer within 10 s".into()));
                // Hand the terminal over; no key reader competes for stdin.
                leave(&mut terminal);
                let status = target.map(|target| {
                    let mut ssh = std::process::Command::new("ssh");
                    ssh.args(target.ssh_args());
                    crate::foreground::run_foreground(ssh)
                });
                match enter() {
                    Ok(t) => terminal = t,
                    Err(e) => break Err(e),
                }
                let _ = terminal.clear();
                model.message = Some(match status {
                    Ok(Ok(0)) => (format!("back from {name}"), false),
                    Ok(Ok(code)) => (format!("ssh {name} ended with exit code {code}"), true),
                    Ok(Err(e)) => (format!("cannot run ssh: {e}"), true),
                    Err(e) => (format!("ssh {name}: {e}"), true),
                });
                refresh_now.notify_one();
            }
            Some(action) => {
                let id = model.begin(&action);
                handle.spawn(actions::perform(
                    options.fleet.clone(),
                    action,
                    id,
                    tx.clone(),
                ));
            }
        }
    };
    leave(&mut terminal);
    // Put the process's panic hook back as it was.
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    result
}

/// Reads the selected VM's console tail when the selection changes, and
/// again every two seconds.
fn load_console(model: &mut Model, last: &mut Option<(String, Instant)>) {
    let Some(vm) = model.selected_vm() else {
        model.console.clear();
        return;
    };
    let fresh = matches!(last, Some((id, at)) if *id == vm.id && at.elapsed() < REFRESH);
    if fresh {
        return;
    }
    *last = Some((vm.id.clone(), Instant::now()));
    model.console = console_tail(vm);
}

/// The last lines of a VM's console, from the file its own VMM writes
/// (Firecracker and QEMU differ).
pub fn console_tail(vm: &banger_api::Vm) -> Vec<String> {
    banger_api::files::tail_file(&vm.console_log(), 20)
}
