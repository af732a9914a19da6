//! The developer's daily loop against one real guest under QEMU, in a test
//! network namespace: `vm logs` (and following it), `ssh-config` with plain
//! ssh and scp, `vm cp` both ways, `vm forward` TCP and UDP (across a daemon
//! restart), and `vm prune --dry-run`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Runs `python3 -c SCRIPT ARGS` inside the test's namespace; its stdout.
fn python_in(env: &TestEnv, script: &str, args: &[&str]) -> String {
    let out = env
        .command("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "python3: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const HTTP_GET: &str = "import sys,urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:'+sys.argv[1]+'/', timeout=10).read().decode())";
const UDP_PING: &str = "import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(10)\ns.sendto(b'ping-udp',('127.0.0.1',int(sys.argv[1])))\nprint(s.recv(100).decode())";

#[test]
fn logs_ssh_config_copies_forwards_and_prune_on_one_vm() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("loop")));
    env.write_config("vmm = \"qemu\"");
    env.ok(&["vm", "create", "--name", "loop"]);

    // --- vm logs: the kernel's boot lines; -f follows what is written.
    let logs = env.ok(&["vm", "logs", "loop"]);
    assert!(
        logs.contains("Linux version"),
        "{}",
        &logs[..logs.len().min(2000)]
    );
    env.ok(&["vm", "logs", "--vmm", "loop"]);
    let tail = env.ok(&["vm", "logs", "-n", "3", "loop"]);
    assert!(tail.lines().count() <= 3, "{tail}");
    let mut follow = env
        .command(BANGER)
        .args(["vm", "logs", "-f", "loop"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("banger-follow-marker") {
                let _ = tx.send(());
            }
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    env.ok(&[
        "vm",
        "exec",
        "loop",
        "--",
        "sh",
        "-c",
        "echo banger-follow-marker > /dev/console",
    ]);
    let followed = rx.recv_timeout(Duration::from_secs(20));
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert!(followed.is_ok(), "vm logs -f did not show the new line");

    // --- ssh-config: plain ssh and scp with the generated file.
    let config = env.ok(&["ssh-config"]);
    assert!(config.contains("Host loop loop.vm"), "{config}");
    let file = env.root.path().join("ssh_config");
    std::fs::write(&file, &config).unwrap();
    let f = file.display().to_string();
    let ssh = env
        .command("ssh")
        .args(["-F", &f, "loop.vm", "hostname"])
        .output()
        .unwrap();
    assert!(ssh.status.success(), "{}", text(&ssh));
    assert_eq!(String::from_utf8_lossy(&ssh.stdout).trim(), "loop");
    let payload = env.root.path().join("scp-payload");
    std::fs::write(&payload, "over scp\n").unwrap();
    let scp = env
        .command("scp")
        .args([
            "-F",
            &f,
            "-q",
            &payload.display().to_string(),
            "loop.vm:/tmp/scp-payload",
        ])
        .output()
        .unwrap();
    assert!(scp.status.success(), "{}", text(&scp));
    assert_eq!(
        env.ok(&["vm", "exec", "loop", "--", "cat", "/tmp/scp-payload"]),
        "over scp\n"
    );
    // --install twice: one line; --uninstall: the file as it was, byte for byte.
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
    let original = "Host work\n    HostName 198.51.100.7\n";
    std::fs::write(home.path().join(".ssh/config"), original).unwrap();
    for _ in 0..2 {
        let out = env
            .command(BANGER)
            .args(["ssh-config", "--install"])
            .env("HOME", home.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let installed = std::fs::read_to_string(home.path().join(".ssh/config")).unwrap();
    assert_eq!(installed.matches("Include ").count(), 1, "{installed}");
    let out = env
        .command(BANGER)
        .args(["ssh-config", "--uninstall"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(home.path().join(".ssh/config")).unwrap(),
        original
    );

    // --- vm cp: a 50 MiB file and a tree with a link and a 0600 file, both ways.
    let host = env.root.path().join("cp");
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    let big = host.join("big");
    let dd = Command::new("dd")
        .args(["if=/dev/urandom", "bs=1M", "count=50", "status=none"])
        .arg(format!("of={}", big.display()))
        .status()
        .unwrap();
    assert!(dd.success());
    std::fs::write(host.join("tree/sub/secret"), "s3cret\n").unwrap();
    std::fs::set_permissions(
        host.join("tree/sub/secret"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::symlink("sub/secret", host.join("tree/link")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&env.ok(&[
        "vm",
        "cp",
        "--json",
        &big.display().to_string(),
        "loop:/root/big",
    ]))
    .unwrap();
    eprintln!("vm cp 50 MiB in: {summary}");
    let guest_sum = env.ok(&["vm", "exec", "loop", "--", "sha256sum", "/root/big"]);
    assert!(guest_sum.starts_with(&sha256(&big)), "{guest_sum}");
    env.ok(&[
        "vm",
        "cp",
        &host.join("tree").display().to_string(),
        "loop:/root/tree",
    ]);
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "loop",
            "--",
            "stat",
            "-c",
            "%a",
            "/root/tree/sub/secret"
        ])
        .trim(),
        "600"
    );
    assert_eq!(
        env.ok(&["vm", "exec", "loop", "--", "readlink", "/root/tree/link"])
            .trim(),
        "sub/secret"
    );
    let back = host.join("back");
    std::fs::create_dir_all(&back).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&env.ok(&[
        "vm",
        "cp",
        "--json",
        "loop:/root/big",
        &back.join("big").display().to_string(),
    ]))
    .unwrap();
    eprintln!("vm cp 50 MiB out: {summary}");
    assert_eq!(sha256(&back.join("big")), sha256(&big));
    env.ok(&["vm", "cp", "loop:/root/tree", &back.display().to_string()]);
    let secret = back.join("tree/sub/secret");
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "s3cret\n");
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_link(back.join("tree/link")).unwrap(),
        Path::new("sub/secret")
    );
    // A link that leaves the copy is refused, and writes nothing.
    env.ok(&[
        "vm",
        "exec",
        "loop",
        "--",
        "sh",
        "-c",
        "mkdir -p /root/evil && ln -sf /etc/passwd /root/evil/pw",
    ]);
    let err = env.fails(&[
        "vm",
        "cp",
        "loop:/root/evil",
        &back.join("evil").display().to_string(),
    ]);
    assert!(err.contains("absolute link"), "{err}");
    assert!(!back.join("evil").exists());

    // --- vm forward: TCP to a guest web server, UDP to a guest echo.
    env.ok(&["vm", "exec", "-n", "loop", "--", "sh", "-c",
        "mkdir -p /tmp/www && echo forwarded > /tmp/www/index.html && cd /tmp/www && nohup python3 -m http.server 8000 >/dev/null 2>&1 &"]);
    env.ok(&[
        "vm",
        "exec",
        "-n",
        "loop",
        "--",
        "sh",
        "-c",
        "nohup socat UDP-LISTEN:5353,fork EXEC:cat >/dev/null 2>&1 &",
    ]);
    env.ok(&["vm", "forward", "loop", "18080:8000"]);
    env.ok(&["vm", "forward", "--udp", "loop", "15353:5353"]);
    let mut got = String::new();
    for _ in 0..50 {
        let out = env
            .command("python3")
            .arg("-c")
            .arg(HTTP_GET)
            .arg("18080")
            .output()
            .unwrap();
        if out.status.success() {
            got = String::from_utf8_lossy(&out.stdout).into_owned();
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(got.trim(), "forwarded");
    assert_eq!(python_in(&env, UDP_PING, &["15353"]).trim(), "ping-udp");
    let shown = env.ok(&["vm", "show", "loop"]);
    assert!(shown.contains("127.0.0.1:18080 → :8000 (tcp)"), "{shown}");
    // A host port in use is refused.
    let mut squatter = env
        .command("python3")
        .args(["-c", "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',18081))\ns.listen()\nprint('ready',flush=True)\ntime.sleep(60)"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(squatter.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let err = env.fails(&["vm", "forward", "loop", "18081:8000"]);
    assert!(err.contains("already in use"), "{err}");
    squatter.kill().unwrap();
    squatter.wait().unwrap();
    // A daemon restart re-establishes the forwards.
    env.ok(&["daemon", "stop"]);
    env.ok(&["daemon", "status"]);
    assert_eq!(python_in(&env, HTTP_GET, &["18080"]).trim(), "forwarded");
    env.ok(&["vm", "forward", "--remove", "loop", "18080"]);

    // --- prune: a running VM is never due; a dry run changes nothing.
    let none = env.ok(&["vm", "prune", "--stopped-for", "0s", "--dry-run"]);
    assert!(none.contains("no VM"), "{none}");
    env.ok(&["vm", "stop", "loop"]);
    let due = env.json(&["vm", "prune", "--stopped-for", "0s", "--dry-run", "--json"]);
    assert_eq!(due[0]["name"], "loop");
    assert_eq!(
        env.json(&["vm", "show", "loop", "--json"])["state"],
        "stopped"
    );
    let err = env.fails(&["vm", "cp", &big.display().to_string(), "loop:/root/big2"]);
    assert!(err.contains("banger vm start loop"), "a stopped VM: {err}");
    env.ok(&["vm", "prune", "--stopped-for", "0s"]);
    assert!(env
        .json(&["vm", "list", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
}

/// A git repository with a tracked file, an untracked one and an ignored one.
fn fixture_repo(dir: &Path) {
    let script =
        "git init -q && printf 'ignored.txt\\n' > .gitignore && echo tracked > tracked.txt && \
        mkdir src && printf 'line one\\n' > src/lib.txt && git add . && \
        git -c user.name=t -c user.email=t@t commit -qm one && \
        echo untracked > untracked.txt && echo ignored > ignored.txt";
    let ok = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn vm_run_copies_a_repo_runs_a_command_exports_its_changes_and_syncs_files() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("run")));
    let home = env.root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let gitconfig = home.join("gitconfig");
    std::fs::write(&gitconfig, "[user]\n\tname = Dev\n").unwrap();
    std::fs::set_permissions(&gitconfig, std::fs::Permissions::from_mode(0o640)).unwrap();
    env.write_config(&format!(
        "vmm = \"qemu\"\n[[file_sync]]\nhost = {:?}\nguest = \"/root/.gitconfig\"\n[[file_sync]]\nhost = \"/nonexistent/dotfile\"\nguest = \"/root/.dotfile\"\n",
        gitconfig.display().to_string()
    ));
    let repo = env.root.path().join("project");
    std::fs::create_dir_all(&repo).unwrap();
    fixture_repo(&repo);
    let repo_arg = repo.display().to_string();

    // --rm: tracked files there, untracked not; the exit code is the command's; the VM goes.
    let out = env.banger(&[
        "vm", "run", "--rm", "--name", "run-once", &repo_arg, "--",
        "sh", "-c", "test -f tracked.txt && test -f src/lib.txt && test ! -e untracked.txt && test ! -e ignored.txt && pwd && exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/root/project"),
        "{}",
        text(&out)
    );
    assert!(
        env.banger(&["vm", "show", "run-once"]).status.code() != Some(0),
        "the VM is gone"
    );

    // -d with untracked files; file_sync copied (mode kept), a missing one only warned about.
    let out = env.banger(&[
        "vm",
        "run",
        "-d",
        "--include-untracked",
        "--name",
        "review",
        &repo_arg,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("/nonexistent/dotfile"),
        "the missing file is named: {stderr}"
    );
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "review",
            "--",
            "cat",
            "/root/project/untracked.txt"
        ]),
        "untracked\n"
    );
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "review",
            "--",
            "stat",
            "-c",
            "%a",
            "/root/.gitconfig"
        ])
        .trim(),
        "640"
    );
    assert!(env
        .ok(&["vm", "exec", "review", "--", "cat", "/root/.gitconfig"])
        .contains("Dev"));
    std::fs::write(&gitconfig, "[user]\n\tname = Changed\n").unwrap();
    env.ok(&["vm", "sync", "review"]);
    assert!(env
        .ok(&["vm", "exec", "review", "--", "cat", "/root/.gitconfig"])
        .contains("Changed"));

    // export: an edit and a new file, applied cleanly to a fresh clone.
    env.ok(&[
        "vm",
        "exec",
        "review",
        "--",
        "sh",
        "-c",
        "cd /root/project && printf 'line two\\n' >> src/lib.txt && printf 'new\\n' > src/new.txt",
    ]);
    let patch = env.ok(&["vm", "export", "review"]);
    assert!(
        patch.contains("src/new.txt") && patch.contains("+line two"),
        "{patch}"
    );
    let clone = env.root.path().join("clone");
    let cloned = Command::new("git")
        .args(["clone", "-q", &repo_arg])
        .arg(&clone)
        .status()
        .unwrap();
    assert!(cloned.success());
    // untracked.txt was part of the copy, so it is not in the patch; give the clone it too.
    std::fs::write(clone.join("untracked.txt"), "untracked\n").unwrap();
    let patch_file = env.root.path().join("work.patch");
    std::fs::write(&patch_file, &patch).unwrap();
    let applied = Command::new("git")
        .arg("-C")
        .arg(&clone)
        .arg("apply")
        .arg(&patch_file)
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(
        std::fs::read_to_string(clone.join("src/lib.txt")).unwrap(),
        "line one\nline two\n"
    );
    assert_eq!(
        std::fs::read_to_string(clone.join("src/new.txt")).unwrap(),
        "new\n"
    );
    env.ok(&["vm", "delete", "review"]);

    // A file instead of a directory is refused before any VM exists.
    let err = env.fails(&["vm", "run", &repo.join("tracked.txt").display().to_string()]);
    assert!(err.contains("not a directory"), "{err}");

    // Ctrl-C during the command: the VM goes too.
    let mut running = env
        .command(BANGER)
        .args([
            "vm",
            "run",
            "--rm",
            "--name",
            "run-interrupted",
            &repo_arg,
            "--",
            "sleep",
            "1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut started = false;
    for _ in 0..300 {
        let out = env.banger(&[
            "vm",
            "exec",
            "run-interrupted",
            "--",
            "pgrep",
            "-x",
            "sleep",
        ]);
        if out.status.success() {
            started = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(started, "the command never started");
    // The banger process under `ip netns exec`: signal it, not ip.
    let pids = Command::new("pgrep")
        .args(["-f", "vm run --rm --name run-interrupted"])
        .output()
        .unwrap();
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-INT", pid]).status();
    }
    let status = running.wait().unwrap();
    assert_ne!(status.code(), Some(0));
    assert!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty(),
        "the interrupted run's VM is gone"
    );

    // Ctrl-C while the VM is still being created: the create ends, then
    // the VM is deleted.
    let mut early = env
        .command(BANGER)
        .args([
            "vm",
            "run",
            "--rm",
            "--name",
            "run-early",
            &repo_arg,
            "--",
            "true",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = false;
    for _ in 0..300 {
        let list = env.json(&["vm", "list", "--json"]);
        if list
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "run-early")
        {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "the create never began");
    let pids = Command::new("pgrep")
        .args(["-f", "vm run --rm --name run-early"])
        .output()
        .unwrap();
    for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
        let _ = Command::new("kill").args(["-INT", pid]).status();
    }
    let status = early.wait().unwrap();
    assert_ne!(status.code(), Some(0), "interrupted");
    assert!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty(),
        "the VM interrupted while it was created is gone"
    );
}
