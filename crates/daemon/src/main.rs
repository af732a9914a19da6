//! `bangerd`, the daemon.

fn main() -> anyhow::Result<()> {
    banger_daemon::entry::main()
}
