//! `bangerd`, the daemon; its code is the `banger-daemon` crate.

fn main() -> anyhow::Result<()> {
    banger_daemon::entry::main()
}
