//! `banger-bench`: benchmarks of the real binaries (`make bench-create`).
//!
//! Everything runs with private XDG directories, and everything that talks
//! to a guest runs inside a network namespace the benchmark makes and
//! deletes, so it never touches your VMs or your host's network. Whatever
//! it starts (daemons in and out of the namespace, VMMs) is stopped when it
//! ends, however it ends.

mod create;
mod daily;
mod env;
mod suspend;
mod warm;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "banger-bench", about = "Benchmarks of banger's real binaries")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// `vm create`: wall time, time until `vm ssh -- true` works, and the
    /// daemon's split between host-side work and the guest's boot
    Create(create::Args),
    /// The daily loop: `vm run --rm -- true`, `vm cp` MiB/s both ways, and
    /// a forward's round trip next to a direct one
    Loop(daily::Args),
    /// A cold create next to a suspend and a resume of the same guest
    Suspend(suspend::Args),
    /// Cold creates, warm creates and clones of a running VM, in one run
    Warm(warm::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Create(args) => create::run(args),
        Bench::Loop(args) => daily::run(args),
        Bench::Suspend(args) => suspend::run_bench(args),
        Bench::Warm(args) => warm::run_bench(args),
    }
}
