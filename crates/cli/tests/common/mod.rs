//! Harness for end-to-end tests: the real `banger` and `bangerd` binaries,
//! private XDG directories, and a network namespace per test so guests,
//! bridges and TAP devices never touch the host's own network.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

pub const BANGER: &str = env!("CARGO_BIN_EXE_banger");

/// Images are built once per test run (outside any namespace: the build
/// needs Debian's mirror) and shared by every test through `images_dir`.
pub fn images_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-images")
}

static IMAGE_BUILD: Mutex<bool> = Mutex::new(false);

/// Builds the default image unless this run already has it.
pub fn ensure_default_image() {
    let mut built = IMAGE_BUILD.lock().unwrap_or_else(|p| p.into_inner());
    if *built {
        return;
    }
    let env = TestEnv::new(None);
    let out = env.banger(&["image", "build", "--name", "default"]);
    assert!(out.status.success(), "image build failed:\n{}", text(&out));
    env.banger(&["daemon", "stop"]);
    *built = true;
}

pub fn require_root_tools() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "end-to-end tests need root (network namespaces, TAP devices)"
    );
    // banger starts the bangerd beside it; it is another package's binary,
    // built by `cargo test --workspace`.
    let bangerd = Path::new(BANGER).with_file_name("bangerd");
    assert!(
        bangerd.is_file(),
        "{} is missing: run the end-to-end tier as `cargo test --workspace --all-features`",
        bangerd.display()
    );
    for tool in [
        "ip",
        "qemu-system-x86_64",
        "vhost-device-vsock",
        "mkfs.ext4",
        "ssh",
        "mmdebstrap",
        "python3",
        "script",
    ] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{tool} is required (see .ci/run for the packages)"
        );
    }
}

/// A network namespace that is deleted, with everything in it, on drop
/// (unless it was only joined).
pub struct Netns {
    pub name: String,
    owned: bool,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("bgt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run_ok(Command::new("ip").args(["netns", "add", &name]));
        run_ok(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        Netns { name, owned: true }
    }

    /// Another handle on a namespace someone else made and deletes.
    pub fn join(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            owned: false,
        }
    }

    /// A default route through a veth whose peer stays in the namespace
    /// (traffic goes nowhere): enough for NAT to find an uplink.
    pub fn with_default_route(self) -> Netns {
        for args in [
            &[
                "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p",
            ][..],
            &["addr", "add", "198.51.100.2/24", "dev", "uplink0"],
            &["link", "set", "uplink0p", "up"],
            &["link", "set", "uplink0", "up"],
            &["route", "add", "default", "via", "198.51.100.1"],
        ] {
            run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args));
        }
        self
    }

    pub fn links(&self) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-o", "link"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        // Kill whatever still runs inside (a failed test's daemon or VMM).
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Private XDG directories and, optionally, a namespace to run in and a
/// user to run as (not root).
pub struct TestEnv {
    pub root: tempfile::TempDir,
    pub netns: Option<Netns>,
    pub user: Option<(u32, u32)>,
}

impl TestEnv {
    pub fn new(netns: Option<Netns>) -> TestEnv {
        let root = tempfile::Builder::new()
            .prefix("banger-e2e-")
            .tempdir()
            .unwrap();
        let env = TestEnv {
            root,
            netns,
            user: None,
        };
        std::fs::create_dir_all(env.config_dir()).unwrap();
        env.write_config("");
        env
    }

    /// Like [`TestEnv::new`], every banger command run as `uid`:`gid`,
    /// which owns the XDG directories.
    pub fn as_user(netns: Option<Netns>, uid: u32, gid: u32) -> TestEnv {
        let mut env = TestEnv::new(netns);
        std::fs::create_dir_all(env.root.path().join("run")).unwrap();
        run_ok(
            Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}")])
                .arg(env.root.path()),
        );
        env.user = Some((uid, gid));
        env
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.path().join("config/banger")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state/banger")
    }

    /// Writes config.toml: the shared images dir plus `extra` lines. No
    /// warm templates after image builds unless `extra` asks: builds run
    /// outside a test namespace, where no guest may boot.
    pub fn write_config(&self, extra: &str) {
        let warm = if extra.contains("warm_after_build") {
            ""
        } else {
            "warm_after_build = false\n"
        };
        let config = format!(
            "images_dir = {:?}\nboot_timeout_secs = 400\n{warm}{extra}\n",
            images_dir().display().to_string()
        );
        std::fs::write(self.config_dir().join("config.toml"), config).unwrap();
    }

    pub fn command(&self, program: &str) -> Command {
        let mut argv: Vec<String> = Vec::new();
        if let Some(ns) = &self.netns {
            argv.extend(["ip", "netns", "exec", &ns.name].map(String::from));
        }
        if let Some((uid, gid)) = self.user {
            argv.extend([
                "setpriv".into(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--".into(),
            ]);
        }
        argv.push(program.into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        let r = self.root.path();
        cmd.env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_STATE_HOME", r.join("state"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("XDG_RUNTIME_DIR", r.join("run"))
            .env_remove("BANGER_LOG_LEVEL");
        if !r.join("run").exists() {
            std::fs::create_dir_all(r.join("run")).unwrap();
        }
        cmd
    }

    pub fn banger(&self, args: &[&str]) -> Output {
        self.command(BANGER)
            .args(args)
            .output()
            .expect("run banger")
    }

    /// Runs banger and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.banger(args);
        assert!(
            out.status.success(),
            "banger {args:?} failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs banger and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.banger(args);
        assert!(
            !out.status.success(),
            "banger {args:?} should have failed:\n{}",
            text(&out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("valid JSON")
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = self.banger(&["daemon", "stop"]);
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
}

/// PIDs of VMM processes whose command line mentions `needle`.
pub fn vmm_pids(needle: &str) -> Vec<u32> {
    pids_of("qemu-system", needle)
}

/// PIDs of QEMU's vsock helpers whose command line mentions `needle`.
/// PIDs of the host ends of QEMU guests' agent channels (banger-relay for
/// the serial channel, vhost-device-vsock for older images' vsock) whose
/// command line mentions `needle`.
pub fn helper_pids(needle: &str) -> Vec<u32> {
    let mut pids = pids_of("banger-relay", needle);
    pids.extend(pids_of("vhost-device-vsock", needle));
    pids
}

/// PIDs of live `program` processes whose command line mentions `needle`.
fn pids_of(program: &str, needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        let argv0 = cmdline.split('\0').next().unwrap_or_default();
        let is_program = argv0
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .starts_with(program);
        if is_program && cmdline.contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// Runs banger with a daemon that will die at `point`.
pub fn crash_at(env: &TestEnv, point: &str, args: &[&str]) {
    env.banger(&["daemon", "stop"]);
    let out = env
        .command(BANGER)
        .env("BANGER_TEST_CRASH_AT", point)
        .args(args)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the daemon should have died at {point}:\n{}",
        text(&out)
    );
}
