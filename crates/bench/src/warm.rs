//! `banger-bench warm`: in one run, cold creates (`--cold`), making the
//! image's warm template (`image warm`), warm creates, and clones of a
//! running VM, each timed to the command's return and to a working
//! `vm ssh -- true`; then a series of warm creates in a row, all kept
//! running, and what they cost on disk next to the template.

use std::time::Instant;

use crate::env::BenchEnv;
use crate::suspend::{median, ms, ssh_ready};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Warm creates in a row, each VM kept running.
    #[arg(long, default_value_t = 10)]
    series: u32,
    #[arg(long, env = "BANGER_BENCH_IMAGES")]
    images: Option<std::path::PathBuf>,
    /// The VMM (`qemu`, or `firecracker` on a KVM host where its guests boot)
    #[arg(long, default_value = "qemu")]
    vmm: String,
    /// firecracker_bin in config.toml
    #[arg(long)]
    firecracker_bin: Option<std::path::PathBuf>,
}

/// Bytes allocated on disk under `path` (`du`: sparse files count what
/// they hold).
fn allocated(path: &std::path::Path) -> anyhow::Result<u64> {
    let out = std::process::Command::new("du")
        .args(["-s", "-B1"])
        .arg(path)
        .output()?;
    anyhow::ensure!(out.status.success(), "du {}", path.display());
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_default())
}

/// Times `banger ARGS` and then `vm ssh NAME -- true`.
fn timed(env: &mut BenchEnv, name: &str, args: &[&str]) -> anyhow::Result<(u64, u64)> {
    let t0 = Instant::now();
    env.ok(true, args)?;
    let done = ms(t0);
    Ok((done, ssh_ready(env, name, t0)?))
}

/// `n` creates one after another, each timed, each deleted before the
/// next unless `keep`; the kept VMs' names.
fn in_a_row(
    env: &mut BenchEnv,
    prefix: &str,
    n: u32,
    keep: bool,
) -> anyhow::Result<(Vec<u64>, Vec<String>)> {
    let (mut times, mut kept) = (vec![], vec![]);
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        let t0 = Instant::now();
        env.ok(true, &["vm", "create", "--name", &name])?;
        times.push(ms(t0));
        if keep {
            kept.push(name);
        } else {
            env.ok(true, &["vm", "delete", "--force", &name])?;
        }
    }
    Ok((times, kept))
}

pub fn run_bench(args: Args) -> anyhow::Result<()> {
    let (mut env, _) = crate::env::with_default_image(
        args.images.clone(),
        &args.vmm,
        args.firecracker_bin.as_deref(),
    )?;

    let (mut cold, mut cold_ssh) = (vec![], vec![]);
    for i in 0..args.runs {
        let name = format!("bench-cold-{i}");
        let (done, ssh) = timed(
            &mut env,
            &name,
            &["vm", "create", "--cold", "--name", &name],
        )?;
        cold.push(done);
        cold_ssh.push(ssh);
        env.ok(true, &["vm", "delete", "--force", &name])?;
    }
    let t0 = Instant::now();
    env.ok(true, &["image", "warm", "default"])?;
    let warm_image = ms(t0);
    let (mut warm, mut warm_ssh, mut clone, mut clone_ssh) = (vec![], vec![], vec![], vec![]);
    for i in 0..args.runs {
        let name = format!("bench-warm-{i}");
        let (done, ssh) = timed(&mut env, &name, &["vm", "create", "--name", &name])?;
        warm.push(done);
        warm_ssh.push(ssh);
        let copy = format!("bench-clone-{i}");
        let (done, ssh) = timed(&mut env, &copy, &["vm", "clone", &name, "--name", &copy])?;
        clone.push(done);
        clone_ssh.push(ssh);
        env.ok(true, &["vm", "delete", "--force", &name, &copy])?;
    }
    // In a row, each deleted before the next: what the template itself
    // costs every time.
    let (fresh, _) = in_a_row(&mut env, "bench-next", args.series, false)?;
    // In a row, each kept running (under emulation every idle guest still
    // takes some of the host's CPU from the next create).
    let (series, names) = in_a_row(&mut env, "bench-row", args.series, true)?;
    let template = allocated(&env.state_dir().join("warm/default"))?;
    let mut per_vm = vec![];
    for name in &names {
        let show: serde_json::Value =
            serde_json::from_str(&env.ok(true, &["vm", "show", name, "--json"])?)?;
        let dir = show["dir"].as_str().unwrap_or_default();
        per_vm.push(allocated(std::path::Path::new(dir))?);
    }
    let mut delete = vec!["vm", "delete", "--force"];
    delete.extend(names.iter().map(String::as_str));
    env.ok(true, &delete)?;
    let percent = |a: u64, b: u64| (a as f64 / b.max(1) as f64 * 1000.0).round() / 10.0;
    let result = serde_json::json!({
        "vmm": args.vmm,
        "cold_create_ms": cold,
        "cold_create_to_ssh_ms": cold_ssh,
        "image_warm_ms": warm_image,
        "warm_create_ms": warm,
        "warm_create_to_ssh_ms": warm_ssh,
        "running_clone_ms": clone,
        "running_clone_to_ssh_ms": clone_ssh,
        "warm_series_deleted_ms": fresh,
        "warm_series_ms": series,
        "template_bytes": template,
        "warm_vm_dir_bytes": per_vm,
        "median": {
            "cold_create_ms": median(&cold),
            "warm_create_ms": median(&warm),
            "running_clone_ms": median(&clone),
            "warm_percent_of_cold": percent(median(&warm), median(&cold)),
            "clone_percent_of_cold": percent(median(&clone), median(&cold)),
            "cold_create_to_ssh_ms": median(&cold_ssh),
            "warm_create_to_ssh_ms": median(&warm_ssh),
            "running_clone_to_ssh_ms": median(&clone_ssh),
            "warm_series_deleted_ms": median(&fresh),
            "warm_series_deleted_max_ms": fresh.iter().max(),
            "warm_series_deleted_percent_of_cold": percent(median(&fresh), median(&cold)),
            "warm_series_ms": median(&series),
            "warm_series_max_ms": series.iter().max(),
            "warm_series_percent_of_cold": percent(median(&series), median(&cold)),
            "warm_vm_dir_bytes": median(&per_vm),
        },
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
