//! `banger-bench suspend`: a cold create next to a suspend and a resume of
//! the same guest, each timed to ready and to a working `vm ssh -- true`,
//! with the saved state's size. The guest boots the default image without
//! its agent, registered as `plain` for the bench: the path of images
//! without an agent (ready by SSH); `bench-warm` has the agent's.

use std::path::Path;
use std::time::Instant;

use anyhow::bail;

use crate::env::BenchEnv;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 3)]
    runs: u32,
    #[arg(long, env = "BANGER_BENCH_IMAGES")]
    images: Option<std::path::PathBuf>,
}

pub(crate) fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn run(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The default image's files with the agent taken out, registered as `plain`.
fn register_plain(env: &mut BenchEnv, images: &Path, into: &Path) -> anyhow::Result<()> {
    let default = images.join("default");
    for file in ["rootfs.ext4", "vmlinux", "initrd.img"] {
        run(std::process::Command::new("cp")
            .arg("--sparse=always")
            .arg(default.join(file))
            .arg(into.join(file)))?;
    }
    run(std::process::Command::new("debugfs")
        .args(["-w", "-R", "rm /usr/local/bin/banger-agent"])
        .arg(into.join("rootfs.ext4")))?;
    let path = |f: &str| into.join(f).display().to_string();
    let seed = default.join("work-seed").display().to_string();
    env.ok(
        false,
        &[
            "image",
            "register",
            "--name",
            "plain",
            "--rootfs",
            &path("rootfs.ext4"),
            "--kernel",
            &path("vmlinux"),
            "--initrd",
            &path("initrd.img"),
            "--work-seed",
            &seed,
        ],
    )?;
    Ok(())
}

/// Time until `vm ssh NAME -- true` succeeds, retrying.
pub(crate) fn ssh_ready(env: &mut BenchEnv, name: &str, since: Instant) -> anyhow::Result<u64> {
    for _ in 0..120 {
        if env
            .banger(true, &["vm", "ssh", name, "--", "true"])?
            .status
            .success()
        {
            return Ok(ms(since));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    bail!("{name}: vm ssh never worked")
}

pub fn run_bench(args: Args) -> anyhow::Result<()> {
    let (mut env, images) = crate::env::qemu_with_default_image(args.images.clone())?;
    let plain = tempfile::tempdir()?;
    register_plain(&mut env, &images, plain.path())?;
    env.stop_daemon(false)?;

    let (mut create, mut create_ssh, mut suspend, mut resume, mut resume_ssh, mut bytes) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for i in 0..args.runs {
        let name = format!("bench-sus-{i}");
        let t0 = Instant::now();
        env.ok(true, &["vm", "create", "--name", &name, "--image", "plain"])?;
        create.push(ms(t0));
        create_ssh.push(ssh_ready(&mut env, &name, t0)?);
        // Let the guest settle as a developer's would before they walk away.
        std::thread::sleep(std::time::Duration::from_secs(5));
        let t0 = Instant::now();
        let out = env.ok(true, &["vm", "suspend", &name, "--json"])?;
        suspend.push(ms(t0));
        let answer: serde_json::Value = serde_json::from_str(&out)?;
        bytes.push(answer[0]["saved_state_bytes"].as_u64().unwrap_or_default());
        let t0 = Instant::now();
        env.ok(true, &["vm", "resume", &name])?;
        resume.push(ms(t0));
        resume_ssh.push(ssh_ready(&mut env, &name, t0)?);
        env.ok(true, &["vm", "delete", "--force", &name])?;
    }
    let ratio = |a: u64, b: u64| (a as f64 / b.max(1) as f64 * 1000.0).round() / 10.0;
    let result = serde_json::json!({
        "cold_create_ms": create,
        "cold_create_to_ssh_ms": create_ssh,
        "suspend_ms": suspend,
        "saved_state_bytes": bytes,
        "resume_ms": resume,
        "resume_to_ssh_ms": resume_ssh,
        "median": {
            "cold_create_ms": median(&create),
            "resume_ms": median(&resume),
            "resume_percent_of_cold_create": ratio(median(&resume), median(&create)),
            "cold_create_to_ssh_ms": median(&create_ssh),
            "resume_to_ssh_ms": median(&resume_ssh),
            "suspend_ms": median(&suspend),
            "saved_state_bytes": median(&bytes),
        },
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
