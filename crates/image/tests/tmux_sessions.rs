//! `banger-tmux-sessions` and the tmux.conf that drives it, with the real
//! tmux on a private server: sessions, windows, panes, their directories and
//! layouts come back after the server is gone; running sessions are left
//! alone; autosave waits for its interval.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use banger_image::{TMUX_CONF, TMUX_SESSIONS};

struct Tmux {
    dir: tempfile::TempDir,
    script: PathBuf,
}

impl Tmux {
    fn new() -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("bin/banger-tmux-sessions");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, TMUX_SESSIONS).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.path().join("home/src/app")).unwrap();
        std::fs::create_dir_all(dir.path().join("sock")).unwrap();
        Tmux { dir, script }
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A command in this test's world: its own HOME and tmux server.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        let path = format!(
            "{}:{}",
            self.script.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        // Panes run a shell restore recognises as an idle prompt.
        cmd.env("HOME", self.home())
            .env("SHELL", "/bin/sh")
            .env("TMUX_TMPDIR", self.dir.path().join("sock"))
            .env("PATH", path)
            .env_remove("TMUX")
            .env_remove("XDG_DATA_HOME");
        cmd
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = self.command(Path::new("tmux")).args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stops the server and waits until its process is gone: a client that
    /// comes sooner reaches the dying server ("server exited unexpectedly").
    fn kill_server(&self) {
        let pid = self.tmux(&["display-message", "-p", "#{pid}"]);
        self.tmux(&["kill-server"]);
        let proc = Path::new("/proc").join(pid.trim());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // Gone, or a zombie nobody has reaped yet.
        let alive = || {
            std::fs::read_to_string(proc.join("stat")).is_ok_and(|stat| {
                let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                !state.starts_with('Z')
            })
        };
        while alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "tmux server never exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn sessions(&self, args: &[&str]) -> Output {
        self.command(&self.script).args(args).output().unwrap()
    }

    fn panes(&self) -> String {
        self.tmux(&[
            "list-panes",
            "-a",
            "-F",
            "#{session_name} #{window_index} #{window_name} #{window_active} #{pane_index} #{pane_active} #{pane_current_path}",
        ])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command(Path::new("tmux")).arg("kill-server").output();
    }
}

#[test]
fn saved_sessions_come_back_with_their_panes_and_directories() {
    let t = Tmux::new();
    let home = t.home().display().to_string();
    let app = t.home().join("src/app").display().to_string();
    t.tmux(&[
        "new-session",
        "-d",
        "-s",
        "work",
        "-n",
        "edit",
        "-c",
        &app,
        "-x",
        "200",
        "-y",
        "50",
    ]);
    t.tmux(&["new-window", "-t", "work:", "-n", "logs", "-c", "/tmp"]);
    t.tmux(&["split-window", "-h", "-t", "work:logs", "-c", &home]);
    t.tmux(&["select-pane", "-t", "work:logs.0"]);
    t.tmux(&["new-session", "-d", "-s", "other thing", "-c", &home]);
    let geometry = || {
        t.tmux(&[
            "list-panes",
            "-t",
            "work:logs",
            "-F",
            "#{pane_index} #{pane_width}x#{pane_height}+#{pane_left}+#{pane_top}",
        ])
    };
    let layout = geometry();
    let before = t.panes();

    let out = t.sessions(&["save"]);
    assert!(out.status.success(), "{out:?}");
    t.kill_server();
    let out = t.sessions(&["restore"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("restored 2 tmux session(s)"));
    assert_eq!(t.panes(), before);
    // Pane sizes and places too: the saved layout is applied.
    assert_eq!(geometry(), layout);

    // A session that is running something is left alone.
    t.tmux(&["kill-session", "-t", "work"]);
    t.tmux(&[
        "new-session",
        "-d",
        "-s",
        "work",
        "-n",
        "mine",
        "-c",
        "/",
        "sleep 300",
    ]);
    let out = t.sessions(&["restore"]);
    // ("other thing", one pane at a prompt, is replaced by its saved self.)
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restored 1 tmux session(s)"),
        "{out:?}"
    );
    let windows = t.tmux(&["list-windows", "-t", "work", "-F", "#{window_name}"]);
    assert_eq!(windows, "mine\n");
}

#[test]
fn autosave_waits_for_its_interval_and_restore_needs_a_save() {
    let t = Tmux::new();
    let out = t.sessions(&["restore"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing saved yet"));
    // No server: nothing to save, and no empty save is written.
    assert!(!t.sessions(&["save"]).status.success());
    let last = t.home().join(".local/share/tmux/sessions/last");
    assert!(!last.exists());

    t.tmux(&["new-session", "-d", "-s", "one"]);
    let out = t.sessions(&["autosave"]);
    assert!(out.status.success() && out.stdout.is_empty(), "{out:?}");
    assert!(std::fs::read_to_string(&last).unwrap().starts_with("one\t"));
    // Within the interval: not saved again.
    t.tmux(&["new-session", "-d", "-s", "two"]);
    t.sessions(&["autosave"]);
    assert!(!std::fs::read_to_string(&last).unwrap().contains("two\t"));
    // Past it (an interval of 0 minutes): saved.
    let out = t
        .command(&t.script)
        .arg("autosave")
        .env("BANGER_TMUX_AUTOSAVE_MINUTES", "0")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&last).unwrap().contains("two\t"));
}

#[test]
fn after_a_restart_autosave_keeps_the_old_save_until_it_is_restored() {
    let t = Tmux::new();
    t.tmux(&["new-session", "-d", "-s", "0", "-c", "/tmp"]);
    t.tmux(&["new-session", "-d", "-s", "work", "-n", "edit", "-c", "/"]);
    t.tmux(&["split-window", "-t", "work:edit", "-c", "/tmp"]);
    assert!(t.sessions(&["save"]).status.success());
    let before = t.panes();
    let last = t.home().join(".local/share/tmux/sessions/last");
    let saved = std::fs::read_to_string(&last).unwrap();

    // The VM restarts: a new server, and starting tmux makes session 0.
    t.kill_server();
    t.tmux(&["new-session", "-d", "-s", "0"]);
    let autosave = || {
        let out = t
            .command(&t.script)
            .arg("autosave")
            .env("BANGER_TMUX_AUTOSAVE_MINUTES", "0")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    autosave();
    assert_eq!(
        std::fs::read_to_string(&last).unwrap(),
        saved,
        "the new server's autosave replaced the save before it was restored"
    );

    // Restore replaces the fresh session 0 (one pane at a shell prompt).
    let out = t.sessions(&["restore"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(t.panes(), before);
    // From now on the new server's autosaves count.
    t.tmux(&["new-session", "-d", "-s", "later"]);
    autosave();
    assert!(std::fs::read_to_string(&last).unwrap().contains("later\t"));
    assert_eq!(
        std::fs::read_to_string(last.with_file_name("last.1")).unwrap(),
        saved,
        "the previous save is kept as last.1"
    );
}

#[test]
fn restore_never_replaces_a_session_with_a_job_in_it() {
    let t = Tmux::new();
    t.tmux(&["new-session", "-d", "-s", "0", "-c", "/tmp"]);
    assert!(t.sessions(&["save"]).status.success());
    t.kill_server();
    // A fresh-looking session 0 whose shell has a job in the background.
    t.tmux(&["new-session", "-d", "-s", "0", "-c", "/"]);
    let pid = t.tmux(&["display-message", "-p", "-t", "=0:", "#{pane_pid}"]);
    t.tmux(&["send-keys", "-t", "=0:", "sleep 300 &", "Enter"]);
    let children = Path::new("/proc")
        .join(pid.trim())
        .join("task")
        .join(pid.trim())
        .join("children");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(&children)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = t.sessions(&["restore"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("restored 0 tmux session(s)"),
        "{out:?}"
    );
    assert!(
        !std::fs::read_to_string(&children)
            .unwrap()
            .trim()
            .is_empty(),
        "the job was killed"
    );
}

#[test]
fn the_tmux_conf_runs_autosave_and_binds_save_and_restore() {
    let t = Tmux::new();
    let conf = t.dir.path().join("tmux.conf");
    std::fs::write(&conf, TMUX_CONF).unwrap();
    t.tmux(&[
        "-f",
        &conf.display().to_string(),
        "new-session",
        "-d",
        "-s",
        "c",
    ]);
    let right = t.tmux(&["show-options", "-g", "status-right"]);
    assert!(
        right.contains("#(banger-tmux-sessions autosave)"),
        "{right}"
    );
    let keys = t.tmux(&["list-keys"]);
    let bound = |key: &str, action: &str| {
        keys.lines().any(|l| {
            l.contains("-T prefix")
                && l.split_whitespace().nth(3) == Some(key)
                && l.contains(&format!("run-shell \"banger-tmux-sessions {action}\""))
        })
    };
    assert!(bound("C-s", "save") && bound("C-r", "restore"), "{keys}");
    // With a client attached (on a terminal: `script`), tmux draws the
    // status line and runs its command: the first autosave happens.
    let mut client = t
        .command(Path::new("script"))
        .args(["-qfec", "tmux attach -t c", "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let last = t.home().join(".local/share/tmux/sessions/last");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !last.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no autosave from the status line"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(std::fs::read_to_string(&last).unwrap().starts_with("c\t"));
    let _ = client.kill();
    let _ = client.wait();
}
