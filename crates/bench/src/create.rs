//! `banger-bench create`: `vm create` timed end to end and split the way the
//! daemon logs it (`guest ready`: host_ms, prepare_ms, boot_ms).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::env::BenchEnv;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 3)]
    runs: u32,
    #[arg(long, default_value = "default")]
    image: String,
    /// Idle TAPs kept ready (tap_pool_size); 0 = none
    #[arg(long, default_value_t = 2)]
    tap_pool: u32,
    /// vmm in config.toml: auto, qemu or firecracker; repeat it to measure
    /// each in turn, in one run
    #[arg(long, default_values_t = ["auto".to_string()])]
    vmm: Vec<String>,
    /// firecracker_bin in config.toml
    #[arg(long)]
    firecracker_bin: Option<PathBuf>,
    /// Where images are kept between runs (shared with the test suite's cache)
    #[arg(long, env = "BANGER_BENCH_IMAGES")]
    images: Option<PathBuf>,
    /// Measure only the host side: up to the VMM running the guest, which
    /// is then deleted (for VMMs whose guests cannot boot on this host)
    #[arg(long)]
    host_only: bool,
}

/// The daemon's "guest ready" (or "VMM launched") log line.
#[derive(Debug, Deserialize)]
struct Ready {
    fields: ReadyFields,
}

#[derive(Debug, Deserialize)]
struct ReadyFields {
    message: String,
    vm: Option<String>,
    host_ms: Option<u64>,
    prepare_ms: Option<f64>,
    boot_ms: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Run {
    run: u32,
    tap: String,
    /// Until `vm create` answered (not measured with --host-only).
    create_ms: Option<u64>,
    ssh_ready_ms: Option<u64>,
    host_ms: Option<u64>,
    prepare_ms: Option<f64>,
    boot_ms: Option<u64>,
}

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The last log line of `message` for VM `name`.
fn logged(log: &Path, message: &str, name: &str) -> Option<ReadyFields> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .filter_map(|l| serde_json::from_str::<Ready>(l).ok())
        .map(|r| r.fields)
        .rfind(|f| f.message == message && f.vm.as_deref() == Some(name))
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> Option<T> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.get(values.len().saturating_sub(1) / 2).copied()
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut results = Vec::new();
    for vmm in &args.vmm {
        results.push(bench(&args, vmm)?);
    }
    let output = match results.len() {
        1 => results.remove(0),
        _ => serde_json::Value::Array(results),
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

/// Waits for the daemon's "VMM launched" line of VM `name`.
fn wait_launched(log: &Path, name: &str) -> anyhow::Result<ReadyFields> {
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(fields) = logged(log, "VMM launched", name) {
            return Ok(fields);
        }
        if Instant::now() > deadline {
            bail!("{name}: the VMM never launched (see {})", log.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// One VMM's runs, each in a fresh daemon environment of its own.
fn bench(args: &Args, vmm: &str) -> anyhow::Result<serde_json::Value> {
    let images = args
        .images
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench-images"));
    let images = std::path::absolute(images)?;
    let mut config: BTreeMap<&str, toml::Value> = BTreeMap::new();
    config.insert("images_dir", images.display().to_string().into());
    config.insert("boot_timeout_secs", 600.into());
    config.insert("tap_pool_size", i64::from(args.tap_pool).into());
    config.insert("vmm", vmm.into());
    // Builds run outside the bench namespace, where no guest may boot;
    // the warm bench makes its template itself, timed.
    config.insert("warm_after_build", false.into());
    if let Some(bin) = &args.firecracker_bin {
        config.insert(
            "firecracker_bin",
            std::path::absolute(bin)?.display().to_string().into(),
        );
    }
    let mut env = BenchEnv::new(&config)?;

    // The image is built (or reused) on the host: that needs Debian's mirror.
    env.ok(false, &["image", "build", "--name", &args.image])
        .context("building the image")?;
    env.stop_daemon(false)?;

    let log = env.state_dir().join("bangerd.log");
    let mut runs = Vec::new();
    for i in 1..=args.runs {
        let name = format!("bench-{i}");
        let create = ["vm", "create", "--name", &name, "--image", &args.image];
        let t0 = Instant::now();
        let (create_ms, ssh_ready_ms) = if args.host_only {
            // The host side ends where the VMM runs the guest.
            let mut child = env.spawn(true, &create)?;
            let launched = wait_launched(&log, &name);
            let _ = env.banger(true, &["vm", "delete", "--force", &name]);
            let _ = child.wait();
            launched?;
            (None, None)
        } else {
            let out = env.banger(true, &create)?;
            let create_ms = ms(t0);
            if !out.status.success() {
                bail!(
                    "vm create failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            while !env
                .banger(true, &["vm", "ssh", &name, "--", "true"])?
                .status
                .success()
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            (Some(create_ms), Some(ms(t0)))
        };
        let ready = logged(&log, "guest ready", &name);
        let launched = logged(&log, "VMM launched", &name);
        let tap = env
            .banger(true, &["vm", "show", &name, "--json"])
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["tap"].as_str().map(String::from))
            .unwrap_or_default();
        runs.push(Run {
            run: i,
            tap,
            create_ms,
            ssh_ready_ms,
            host_ms: ready.as_ref().or(launched.as_ref()).and_then(|r| r.host_ms),
            prepare_ms: ready.as_ref().and_then(|r| r.prepare_ms),
            boot_ms: ready.as_ref().and_then(|r| r.boot_ms),
        });
        let _ = env.banger(true, &["vm", "delete", "--force", &name]);
    }
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(true, &["daemon", "status", "--json"])?)?;
    let pick = |f: fn(&Run) -> Option<u64>| median(runs.iter().filter_map(f).collect());
    Ok(serde_json::json!({
        "vmm": status["vmm"],
        "accel": status["accel"],
        "tap_pool_size": args.tap_pool,
        "runs": runs,
        "median": {
            "create_ms": pick(|r| r.create_ms),
            "ssh_ready_ms": pick(|r| r.ssh_ready_ms),
            "host_ms": pick(|r| r.host_ms),
            "prepare_ms": median(runs.iter().filter_map(|r| r.prepare_ms).collect()),
            "boot_ms": pick(|r| r.boot_ms),
        }
    }))
}
