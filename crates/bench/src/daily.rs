//! `banger-bench loop`: the developer's daily loop timed — `vm run --rm --
//! true` end to end, `vm cp` MiB/s each way, and the round trip through a
//! `vm forward` next to a direct connection to the guest's address.

use std::time::Instant;

use anyhow::bail;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Size of the file `vm cp` moves, in MiB
    #[arg(long, default_value_t = 100)]
    copy_mib: u32,
    /// Round trips timed through the forward and directly
    #[arg(long, default_value_t = 500)]
    round_trips: u32,
    #[arg(long, env = "BANGER_BENCH_IMAGES")]
    images: Option<std::path::PathBuf>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Median of round trips, in microseconds, as the namespace's python sees them.
const LATENCY: &str = "import socket,sys,time\nhost,port,n=sys.argv[1],int(sys.argv[2]),int(sys.argv[3])\ns=socket.create_connection((host,port))\ns.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\nts=[]\nfor _ in range(n):\n    t=time.perf_counter(); s.sendall(b'x'); s.recv(1); ts.append(time.perf_counter()-t)\nts.sort(); print(round(ts[len(ts)//2]*1e6,1))";

pub fn run(args: Args) -> anyhow::Result<()> {
    let (mut env, _) = crate::env::qemu_with_default_image(args.images.clone())?;

    let project = tempfile::tempdir()?;
    std::fs::write(project.path().join("README"), "bench\n")?;
    let project_arg = project.path().display().to_string();
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let t0 = Instant::now();
        let name = format!("bench-run-{i}");
        env.ok(
            true,
            &[
                "vm",
                "run",
                "--rm",
                "--name",
                &name,
                &project_arg,
                "--",
                "true",
            ],
        )?;
        runs.push(ms(t0));
    }

    env.ok(true, &["vm", "create", "--name", "bench-loop"])?;
    let big = project.path().join("big");
    let status = std::process::Command::new("dd")
        .args(["if=/dev/urandom", "bs=1M", "status=none"])
        .arg(format!("count={}", args.copy_mib))
        .arg(format!("of={}", big.display()))
        .status()?;
    if !status.success() {
        bail!("dd failed");
    }
    let mib = f64::from(args.copy_mib);
    let t0 = Instant::now();
    env.ok(
        true,
        &[
            "vm",
            "cp",
            &big.display().to_string(),
            "bench-loop:/root/big",
        ],
    )?;
    let into = mib / t0.elapsed().as_secs_f64();
    let back = project.path().join("back");
    let t0 = Instant::now();
    env.ok(
        true,
        &[
            "vm",
            "cp",
            "bench-loop:/root/big",
            &back.display().to_string(),
        ],
    )?;
    let out_of = mib / t0.elapsed().as_secs_f64();

    // A one-byte echo in the guest; timed through the forward and directly.
    env.ok(
        true,
        &[
            "vm",
            "exec",
            "-n",
            "bench-loop",
            "--",
            "sh",
            "-c",
            "nohup socat TCP-LISTEN:7000,fork,reuseaddr EXEC:cat >/dev/null 2>&1 &",
        ],
    )?;
    env.ok(true, &["vm", "forward", "bench-loop", "17000:7000"])?;
    let show: serde_json::Value =
        serde_json::from_str(&env.ok(true, &["vm", "show", "bench-loop", "--json"])?)?;
    let ip = show["ip"].as_str().unwrap_or_default().to_string();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let n = args.round_trips.to_string();
    let latency = |host: &str, port: &str| -> anyhow::Result<String> {
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", &env.netns, "python3", "-c", LATENCY, host, port, &n,
            ])
            .output()?;
        if !out.status.success() {
            bail!("latency probe: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let forwarded = latency("127.0.0.1", "17000")?;
    let direct = latency(&ip, "7000")?;
    let _ = env.banger(true, &["vm", "delete", "--force", "bench-loop"]);

    let mut sorted = runs.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let result = serde_json::json!({
        "vm_run_rm_true_ms": runs,
        "vm_run_rm_true_median_ms": sorted.get(sorted.len() / 2),
        "vm_cp_mib": args.copy_mib,
        "vm_cp_in_mib_per_s": (into * 10.0).round() / 10.0,
        "vm_cp_out_mib_per_s": (out_of * 10.0).round() / 10.0,
        "round_trip_median_us": { "forward": forwarded, "direct": direct },
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
