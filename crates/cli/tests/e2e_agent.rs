//! The guest agent against a real guest under QEMU (its virtio-serial port
//! through banger-relay), in a test network namespace: readiness, `vm exec`,
//! a suspend and resume with the agent answering after it,
//! `vm ports` with a real web server, guest stats, the reminder after
//! `vm ssh`, and what happens when the agent is down.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `banger ARGS` with `input` on stdin (written while the output is read,
/// so neither side can fill its pipe and wait on the other).
fn with_stdin(env: &TestEnv, args: &[&str], input: &[u8]) -> Output {
    let mut child = env
        .command(BANGER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

/// Runs `banger ARGS` on a pseudo-terminal (`script`), typing `typed` once
/// the program had time to start; returns what the terminal showed.
fn on_terminal(env: &TestEnv, args: &[&str], typed: &str) -> String {
    let line = std::iter::once(BANGER)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = env.command("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if !typed.is_empty() {
        std::thread::sleep(Duration::from_secs(8));
        stdin.write_all(typed.as_bytes()).unwrap();
    }
    // Keep stdin open until the program ends: EOF would end the session early.
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `vm exec VM -- sh -c SCRIPT`: its output.
fn sh(env: &TestEnv, vm: &str, script: &str) -> String {
    env.ok(&["vm", "exec", vm, "--", "sh", "-c", script])
}

/// `vm exec agenty -- yes`, its output to be read by the test.
fn spawn_yes(env: &TestEnv) -> std::process::Child {
    env.command(BANGER)
        .args(["vm", "exec", "agenty", "--", "yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (briefly) until no process called `name` runs in the guest.
fn assert_ended_in_guest(env: &TestEnv, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env.banger(&["vm", "exec", "agenty", "--", "pgrep", "-x", name]);
        if out.status.code() == Some(1) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} still runs in the guest: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn agent_exec_ports_stats_and_ssh_reminder_on_a_real_guest() {
    require_root_tools();
    ensure_default_image();
    let env = TestEnv::new(Some(Netns::new("agent")));
    env.write_config("vmm = \"qemu\"\nwarm_after_build = true");
    env.ok(&["vm", "create", "--name", "agenty"]);

    // Ready means the agent answered (the daemon says which way the guest
    // became ready), and exec works at once, without SSH.
    let log = std::fs::read_to_string(env.state_dir().join("bangerd.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("guest ready")
            && l.contains("agenty")
            && l.contains("\"agent\":true")),
        "ready by the agent"
    );
    assert_eq!(
        env.ok(&["vm", "exec", "agenty", "--", "cat", "/etc/hostname"]),
        "agenty\n"
    );
    // The agent is on QEMU's virtio-serial port (the image's agent speaks
    // it), which QEMU can save: a suspend and resume keep a process started
    // through the agent, and the agent answers again through a new relay.
    let pid = sh(
        &env,
        "agenty",
        "setsid sleep 9999 </dev/null >/dev/null 2>&1 & echo $!",
    );
    let pid = pid.trim();
    env.ok(&["vm", "suspend", "agenty"]);
    assert_eq!(
        env.json(&["vm", "show", "agenty", "--json"])["state"],
        "suspended"
    );
    env.ok(&["vm", "resume", "agenty"]);
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "agenty",
            "--",
            "cat",
            &format!("/proc/{pid}/comm")
        ]),
        "sleep\n"
    );

    // A clone of the running VM: the same processes and files, its own
    // identity (name, address, MAC, host key, machine-id), both running.
    let identity = "hostname; ip -4 -o addr show eth0 | cut -d' ' -f7; cat /sys/class/net/eth0/address /etc/machine-id";
    let before = sh(&env, "agenty", identity);
    // The daemon killed while the source is paused for the copy: at the
    // next start the source runs on and the half-made clone is gone.
    crash_at(
        &env,
        "clone.paused",
        &["vm", "clone", "agenty", "--name", "lost"],
    );
    let names: Vec<String> = env
        .json(&["vm", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["agenty"], "the interrupted clone is gone");
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "agenty",
            "--",
            "cat",
            &format!("/proc/{pid}/comm")
        ]),
        "sleep\n",
        "the source runs again"
    );
    let clone = env.json(&["vm", "clone", "agenty", "--name", "twin", "--json"]);
    assert_eq!(clone["state"], "running", "{clone}");
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "twin",
            "--",
            "cat",
            &format!("/proc/{pid}/comm")
        ]),
        "sleep\n",
        "the source's process runs on in the clone"
    );
    let twin = sh(&env, "twin", identity);
    let (before, twin): (Vec<&str>, Vec<&str>) = (before.lines().collect(), twin.lines().collect());
    assert_eq!(twin[0], "twin");
    assert_eq!(twin[1], format!("{}/24", clone["ip"].as_str().unwrap()));
    for i in 1..4 {
        assert_ne!(before[i], twin[i], "line {i} of the identity is shared");
    }
    // The same RNG state was restored in both: the clone's was reseeded.
    let random = "head -c 16 /dev/urandom | od -An -tx1";
    assert_ne!(sh(&env, "agenty", random), sh(&env, "twin", random));
    // Plain SSH to the clone: its new host key is the one known_hosts has.
    assert_eq!(env.ok(&["vm", "ssh", "twin", "--", "hostname"]), "twin\n");
    assert_eq!(
        sh(&env, "agenty", identity).lines().next(),
        Some("agenty"),
        "the source runs on as itself"
    );
    env.ok(&["vm", "delete", "twin"]);

    // A warm create: the image's template guest, booted once and saved,
    // restored and given the new VM's identity and the host's clock.
    // The daemon killed while the template guest is being saved: the next
    // one removes the template VM and the half-made template.
    crash_at(&env, "warm.saving", &["image", "warm", "default"]);
    assert_eq!(
        env.json(&["vm", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1,
        "the interrupted template VM is gone"
    );
    assert!(!exists(&env.state_dir().join("warm/default.partial")));
    // A registered image is made warm in the background (as a built one
    // is): a copy of the default image's files under another name.
    let default = env.json(&["image", "show", "default", "--json"]);
    let _ = env.banger(&["image", "delete", "warmable"]);
    let mut register = vec!["image", "register", "--name", "warmable"];
    for (flag, key) in [
        ("--rootfs", "rootfs"),
        ("--kernel", "kernel"),
        ("--initrd", "initrd"),
        ("--work-seed", "work_seed"),
    ] {
        let value = default[key].as_str().unwrap();
        if !value.is_empty() {
            register.extend([flag, value]);
        }
    }
    env.ok(&register);
    let deadline = Instant::now() + Duration::from_secs(400);
    while env.json(&["image", "show", "warmable", "--json"])["warm"] != true {
        assert!(Instant::now() < deadline, "warmable never became warm");
        std::thread::sleep(Duration::from_secs(1));
    }
    // A bigger /root than the template's: grown online in the guest.
    let warm = env.json(&[
        "vm",
        "create",
        "--name",
        "warmy",
        "--image",
        "warmable",
        "--disk-size",
        "12G",
        "--json",
    ]);
    assert_eq!(warm["warm"], true, "{warm}");
    let seen = sh(
        &env,
        "warmy",
        "hostname; date +%s; df -B1 --output=size /root | tail -1",
    );
    let mut seen = seen.lines();
    assert_eq!(seen.next(), Some("warmy"));
    let guest_now: i64 = seen.next().unwrap().parse().unwrap();
    let host_now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert!(
        (host_now - guest_now).abs() < 5,
        "guest clock {guest_now}, host {host_now}"
    );
    let root_bytes: u64 = seen.next().unwrap().trim().parse().unwrap();
    assert!(
        root_bytes > 11 << 30,
        "/root has {root_bytes} bytes, not ~12 GiB"
    );
    assert_eq!(env.ok(&["vm", "ssh", "warmy", "--", "hostname"]), "warmy\n");
    assert!(env
        .ok(&["vm", "show", "warmy"])
        .contains("warm, from warmable's snapshot"));
    // Its own disks from here on: a write survives a stop and a cold start,
    // which comes up with the identity it was given.
    sh(&env, "warmy", "echo kept > /root/note; sync");
    env.ok(&["vm", "stop", "warmy"]);
    env.ok(&["vm", "start", "warmy"]);
    assert_eq!(
        sh(&env, "warmy", "hostname; cat /root/note"),
        "warmy\nkept\n"
    );
    assert_eq!(env.ok(&["vm", "ssh", "warmy", "--", "hostname"]), "warmy\n");
    env.ok(&["vm", "delete", "warmy"]);
    env.ok(&["image", "delete", "warmable"]);
    assert!(!exists(&env.state_dir().join("warm/warmable")));
    // A reader that stops early (`| head`) ends the command, as locally.
    let mut child = spawn_yes(&env);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    for _ in 0..3 {
        assert_eq!(lines.next().unwrap().unwrap(), "y");
    }
    drop(lines);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "vm exec kept going after its reader left"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(141), "like a command killed by SIGPIPE");
    assert_ended_in_guest(&env, "yes");
    // Ctrl-C while output streams: the command ends in the guest too.
    let mut child = spawn_yes(&env);
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    // `ip netns exec` runs banger as its child: signal banger itself.
    let banger_pid =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .ok()
            .and_then(|c| c.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| child.id().to_string());
    std::process::Command::new("kill")
        .args(["-INT", &banger_pid])
        .status()
        .unwrap();
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "exits like an interrupted command"
    );
    assert_ended_in_guest(&env, "yes");
    // -n: no input at all.
    assert_eq!(env.ok(&["vm", "exec", "-n", "agenty", "--", "cat"]), "");

    // Exit codes, separate stdout and stderr, arguments kept exactly.
    let out = env.banger(&[
        "vm",
        "exec",
        "agenty",
        "--",
        "sh",
        "-c",
        "echo 'to out'; echo to err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "to out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to err\n");
    let out = env.banger(&["vm", "exec", "agenty", "--", "no-such-program"]);
    assert_eq!(out.status.code(), Some(127), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-program"),
        "{}",
        text(&out)
    );
    // stdin streams in; binary output comes back byte for byte.
    let input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let out = with_stdin(&env, &["vm", "exec", "agenty", "--", "cat"], &input);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stdout == input,
        "cat returned {} bytes",
        out.stdout.len()
    );
    // env and cwd.
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "agenty",
            "--env",
            "GREETING=hi there",
            "--cwd",
            "/tmp",
            "--",
            "sh",
            "-c",
            "echo \"$GREETING\" $(pwd)",
        ]),
        "hi there /tmp\n"
    );

    // The image's developer tools (pinned, from the npm registry) run, and
    // root's shells activate mise.
    let mise = env.ok(&["vm", "exec", "agenty", "--", "mise", "--version"]);
    assert!(mise.contains("2026.9.15"), "{mise}");
    let opencode = env.ok(&["vm", "exec", "agenty", "--", "opencode", "--version"]);
    assert!(opencode.contains("1.18.33"), "{opencode}");
    assert_eq!(
        env.ok(&[
            "vm",
            "exec",
            "agenty",
            "--",
            "bash",
            "-lic",
            "echo $MISE_SHELL"
        ]),
        "bash\n"
    );
    assert!(env
        .ok(&["vm", "exec", "agenty", "--", "cat", "/root/.tmux.conf"])
        .contains("set -g mouse on"));
    // tmux sessions are saved to /root and come back when asked.
    let restored = env.ok(&[
        "vm",
        "exec",
        "agenty",
        "--",
        "sh",
        "-c",
        "tmux new-session -d -s keep -c /tmp && banger-tmux-sessions save >/dev/null \
         && pid=$(tmux display-message -p '#{pid}') && tmux kill-server \
         && while [ -d /proc/$pid ]; do sleep 0.1; done \
         && banger-tmux-sessions restore >/dev/null \
         && tmux list-panes -a -F '#{session_name} #{pane_current_path}' && tmux kill-server",
    ]);
    assert_eq!(restored, "keep /tmp\n");

    // A real web server in the guest shows up as an http URL.
    env.ok(&[
        "vm",
        "exec",
        "agenty",
        "--",
        "systemd-run",
        "--unit",
        "web",
        "python3",
        "-m",
        "http.server",
        "8000",
        "--directory",
        "/tmp",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let web = loop {
        let ports = env.json(&["vm", "ports", "agenty", "--json"]);
        let found = ports
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["port"] == 8000)
            .cloned();
        if let Some(port) = found {
            break port;
        }
        assert!(Instant::now() < deadline, "port 8000 never listed: {ports}");
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(web["web"], "http", "{web}");
    assert_eq!(web["url"], "http://agenty.vm:8000/", "{web}");
    assert_eq!(web["process"], "python3", "{web}");
    assert!(
        web["command"].as_str().unwrap().contains("http.server"),
        "{web}"
    );
    let ports = env.json(&["vm", "ports", "agenty", "--json"]);
    let ssh = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["port"] == 22)
        .expect("sshd listed");
    assert_eq!(ssh["protocol"], "tcp");
    assert!(ssh.get("web").is_none(), "sshd is not a web server: {ssh}");
    let table = env.ok(&["vm", "ports", "agenty"]);
    assert!(
        table.contains("http://agenty.vm:8000/") && table.contains("agenty.vm:22"),
        "{table}"
    );
    assert!(!table.contains("\x1b]8;;"), "no hyperlinks into a pipe");
    let screen = on_terminal(&env, &["vm", "ports", "agenty"], "");
    assert!(
        screen.contains("\x1b]8;;http://agenty.vm:8000/\x1b\\http://agenty.vm:8000/\x1b]8;;\x1b\\"),
        "a clickable link on a terminal: {screen:?}"
    );

    // The guest's own figures.
    let stats = env.json(&["vm", "stats", "agenty", "--json"]);
    let guest = &stats["guest"];
    assert!(
        guest["memory_total_bytes"].as_u64().unwrap() > 512 << 20,
        "{stats}"
    );
    let disks: Vec<&str> = guest["disks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(disks, ["/", "/root"], "{stats}");

    // After an interactive ssh session ends normally: a reminder on a
    // terminal, none into a pipe.
    let screen = on_terminal(&env, &["vm", "ssh", "agenty"], "exit\n");
    assert!(
        screen.contains("agenty is still running") && screen.contains("banger vm stop agenty"),
        "{screen}"
    );
    let out = with_stdin(&env, &["vm", "ssh", "agenty"], b"exit\n");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("still running"),
        "{}",
        text(&out)
    );
    // None when the VM went down during the session.
    let screen = on_terminal(&env, &["vm", "ssh", "agenty"], "systemctl poweroff\n");
    assert!(!screen.contains("still running"), "{screen}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.json(&["vm", "show", "agenty", "--json"])["state"] != "stopped" {
        assert!(Instant::now() < deadline, "the VM never stopped");
        std::thread::sleep(Duration::from_secs(1));
    }

    // Agent down: a clear error naming the cause and the way out, and the
    // VM is still fully manageable.
    env.ok(&["vm", "start", "agenty"]);
    env.ok(&[
        "vm",
        "ssh",
        "agenty",
        "--",
        "systemctl",
        "stop",
        "banger-agent",
    ]);
    let out = env.banger(&["vm", "exec", "agenty", "--", "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("agent of VM agenty is not answering")
            && err.contains("systemctl status banger-agent"),
        "{err}"
    );
    let err = env.fails(&["vm", "ports", "agenty"]);
    assert!(err.contains("not answering"), "{err}");
    let stats = env.json(&["vm", "stats", "agenty", "--json"]);
    assert!(
        stats["guest"].is_null() && stats["guest_error"].is_string(),
        "{stats}"
    );
    assert_eq!(
        env.ok(&["vm", "ssh", "agenty", "--", "hostname"]),
        "agenty\n"
    );
    env.ok(&["vm", "stop", "agenty"]);
    let dir = env.json(&["vm", "show", "agenty", "--json"])["dir"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(helper_pids(&dir).is_empty(), "no vsock helper after stop");
    let err = env.fails(&["vm", "exec", "agenty", "--", "true"]);
    assert!(err.contains("banger vm start agenty"), "{err}");
    env.ok(&["vm", "delete", "agenty"]);
}
