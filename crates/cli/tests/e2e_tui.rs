//! `banger tui` as a user runs it: the real binary in a real terminal
//! (tmux), against a real daemon and a real guest in a test namespace.
//! Keys are sent to the pane and the screen is read back.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is installed")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "tui"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "tui"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }

    /// Waits until the screen shows every text, or fails with the screen.
    fn wait_for(&self, texts: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {texts:?}; the screen is:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", "tui"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

#[test]
fn the_tui_manages_a_real_vm_in_a_real_terminal() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("tui")));
    env.ok(&["vm", "create", "--name", "tuivm"]);

    let r = env.root.path();
    let ns = &env.netns.as_ref().unwrap().name;
    let quote = |p: PathBuf| format!("'{}'", p.display());
    let command = format!(
        "ip netns exec {ns} env XDG_CONFIG_HOME={} XDG_STATE_HOME={} XDG_CACHE_HOME={} XDG_RUNTIME_DIR={} {} tui",
        quote(r.join("config")),
        quote(r.join("state")),
        quote(r.join("cache")),
        quote(r.join("run")),
        quote(PathBuf::from(BANGER)),
    );
    let tmux = Tmux {
        socket: r.join("tmux.sock"),
    };
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "tui",
        "-x",
        "80",
        "-y",
        "24",
        &command,
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // The fleet at a glance.
    let screen = tmux.wait_for(&["tuivm", "running", "tuivm.vm"], Duration::from_secs(20));
    assert!(screen.contains("1:VMs (1)"), "{screen}");

    // Enter: SSH takes the terminal; leaving it brings the TUI back.
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["root@tuivm"], Duration::from_secs(60));
    tmux.keys(&["echo inside-$((6*7))", "Enter"]);
    tmux.wait_for(&["inside-42"], Duration::from_secs(10));
    tmux.keys(&["exit", "Enter"]);
    tmux.wait_for(&["back from tuivm", "NAME"], Duration::from_secs(20));

    // Stop, with progress in the status line, then the row says stopped.
    tmux.keys(&["x"]);
    tmux.wait_for(&["stopped", "tuivm stopped"], Duration::from_secs(90));
    assert_eq!(
        env.json(&["vm", "show", "tuivm", "--json"])["state"],
        "stopped"
    );

    // Delete asks first; n keeps it, y deletes it.
    tmux.keys(&["d"]);
    tmux.wait_for(&["Delete VM tuivm?"], Duration::from_secs(5));
    tmux.keys(&["n"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    tmux.keys(&["d"]);
    tmux.wait_for(&["Delete VM tuivm?"], Duration::from_secs(5));
    tmux.keys(&["y"]);
    tmux.wait_for(&["No VMs yet"], Duration::from_secs(60));
    assert!(env
        .json(&["vm", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());

    // The help overlay, then q quits and gives the terminal back.
    tmux.keys(&["?"]);
    tmux.wait_for(&["ssh into the VM"], Duration::from_secs(5));
    // (Escape and q in one burst would read as Alt-q.)
    tmux.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!tmux.screen().contains("ssh into the VM"), "help closed");
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tmux.alive() {
        assert!(
            Instant::now() < deadline,
            "the TUI did not quit:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_tui_refuses_without_a_terminal() {
    let env = TestEnv::new(None);
    let err = env.fails(&["tui"]);
    assert!(err.contains("needs a terminal"), "{err}");
}
