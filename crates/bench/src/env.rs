//! A private installation to benchmark in: XDG directories, a config.toml
//! written with a TOML serializer, a network namespace, and the daemons
//! started there, all removed on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub struct BenchEnv {
    root: tempfile::TempDir,
    banger: PathBuf,
    pub netns: String,
    /// Daemons this benchmark started, by namespace (`None`: the host's).
    daemons: Vec<(Option<String>, u32)>,
}

/// The release `banger` beside this binary (both are in target/release).
fn banger_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let banger = exe.with_file_name("banger");
    if !banger.is_file() || !exe.with_file_name("bangerd").is_file() {
        bail!(
            "no banger and bangerd beside {}: build them first (`cargo build --release --bins`)",
            exe.display()
        );
    }
    Ok(banger)
}

impl BenchEnv {
    /// `config` becomes config.toml (values as TOML types).
    pub fn new(config: &BTreeMap<&str, toml::Value>) -> anyhow::Result<BenchEnv> {
        let root = tempfile::Builder::new().prefix("banger-bench-").tempdir()?;
        let env = BenchEnv {
            netns: format!("banger-bench-{}", std::process::id()),
            banger: banger_binary()?,
            root,
            daemons: Vec::new(),
        };
        let config_dir = env.root.path().join("config/banger");
        std::fs::create_dir_all(&config_dir)?;
        std::fs::create_dir_all(env.root.path().join("run"))?;
        std::fs::write(config_dir.join("config.toml"), toml::to_string(config)?)?;
        let status = Command::new("ip")
            .args(["netns", "add", &env.netns])
            .status()?;
        if !status.success() {
            bail!(
                "cannot create network namespace {} (benchmarks run as root)",
                env.netns
            );
        }
        run(Command::new("ip").args(["-n", &env.netns, "link", "set", "lo", "up"]))?;
        Ok(env)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state/banger")
    }

    fn command(&self, in_netns: bool) -> Command {
        let mut cmd = if in_netns {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.netns]).arg(&self.banger);
            c
        } else {
            Command::new(&self.banger)
        };
        let r = self.root.path();
        cmd.env("XDG_CONFIG_HOME", r.join("config"))
            .env("XDG_STATE_HOME", r.join("state"))
            .env("XDG_CACHE_HOME", r.join("cache"))
            .env("XDG_RUNTIME_DIR", r.join("run"))
            .env_remove("BANGER_LOG_LEVEL");
        cmd
    }

    /// Runs banger (in the namespace or on the host), noting the daemon it
    /// may have started so it can be stopped later.
    pub fn banger(&mut self, in_netns: bool, args: &[&str]) -> anyhow::Result<Output> {
        let out = self.command(in_netns).args(args).output()?;
        self.note_daemon(in_netns);
        Ok(out)
    }

    /// Starts banger without waiting for it (output discarded).
    pub fn spawn(&mut self, in_netns: bool, args: &[&str]) -> anyhow::Result<std::process::Child> {
        Ok(self
            .command(in_netns)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?)
    }

    /// Like [`BenchEnv::banger`], failing unless it succeeded.
    pub fn ok(&mut self, in_netns: bool, args: &[&str]) -> anyhow::Result<String> {
        let out = self.banger(in_netns, args)?;
        if !out.status.success() {
            bail!(
                "banger {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn note_daemon(&mut self, in_netns: bool) {
        let Ok(out) = self
            .command(in_netns)
            .args(["daemon", "status", "--json"])
            .output()
        else {
            return;
        };
        let Ok(status) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return;
        };
        if let Some(pid) = status["pid"].as_u64().and_then(|p| u32::try_from(p).ok()) {
            let ns = in_netns.then(|| self.netns.clone());
            if !self.daemons.contains(&(ns.clone(), pid)) {
                self.daemons.push((ns, pid));
            }
        }
    }

    /// Stops the daemon of the host or the namespace and waits for it to go.
    pub fn stop_daemon(&mut self, in_netns: bool) -> anyhow::Result<()> {
        let ns = in_netns.then(|| self.netns.clone());
        let _ = self.command(in_netns).args(["daemon", "stop"]).output();
        for (_, pid) in self.daemons.iter().filter(|(n, _)| *n == ns) {
            wait_gone(*pid, Duration::from_secs(30)).context("the daemon did not stop")?;
        }
        self.daemons.retain(|(n, _)| *n != ns);
        Ok(())
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn wait_gone(pid: u32, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        if Instant::now() > deadline {
            bail!("process {pid} is still running");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Drop for BenchEnv {
    fn drop(&mut self) {
        // Daemons first (they stop cleanly and keep nothing running), then
        // whatever still runs in the namespace (VMMs of a failed run), then
        // any daemon that did not go.
        let _ = self.command(true).args(["daemon", "stop"]).output();
        let _ = self.command(false).args(["daemon", "stop"]).output();
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        for (_, pid) in &self.daemons {
            if wait_gone(*pid, Duration::from_secs(10)).is_err() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                let _ = wait_gone(*pid, Duration::from_secs(5));
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
    }
}

/// A QEMU bench environment with the default image built (into `images`,
/// else `target/bench-images`), its daemon stopped again; and the images
/// directory.
pub fn qemu_with_default_image(images: Option<PathBuf>) -> anyhow::Result<(BenchEnv, PathBuf)> {
    with_default_image(images, "qemu", None)
}

/// The same with the VMM of `vmm` (and `firecracker_bin` where given).
pub fn with_default_image(
    images: Option<PathBuf>,
    vmm: &str,
    firecracker_bin: Option<&std::path::Path>,
) -> anyhow::Result<(BenchEnv, PathBuf)> {
    let images =
        std::path::absolute(images.unwrap_or_else(|| PathBuf::from("target/bench-images")))?;
    let mut config: std::collections::BTreeMap<&str, toml::Value> = Default::default();
    config.insert("images_dir", images.display().to_string().into());
    config.insert("boot_timeout_secs", 600.into());
    config.insert("vmm", vmm.into());
    if let Some(bin) = firecracker_bin {
        config.insert(
            "firecracker_bin",
            std::path::absolute(bin)?.display().to_string().into(),
        );
    }
    // Builds run outside the bench namespace, where no guest may boot;
    // the warm bench makes its template itself, timed.
    config.insert("warm_after_build", false.into());
    let mut env = BenchEnv::new(&config)?;
    anyhow::Context::context(
        env.ok(false, &["image", "build", "--name", "default"]),
        "building the image",
    )?;
    env.stop_daemon(false)?;
    Ok((env, images))
}
