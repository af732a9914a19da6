//! `banger-agent --listen vsock:1024` (in a guest) or `--listen unix:PATH`
//! (tests, debugging on a host).

use banger_api::agent::AGENT_PORT;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen = match args.as_slice() {
        [_] => format!("vsock:{AGENT_PORT}"),
        [_, flag, value] if flag == "--listen" => value.clone(),
        [_, flag] if flag == "--version" => {
            println!(
                "banger-agent {} ({})",
                env!("CARGO_PKG_VERSION"),
                banger_api::agent::CHANNELS_MARKER
            );
            return;
        }
        _ => {
            eprintln!("usage: banger-agent [--listen vsock:PORT|unix:PATH]");
            std::process::exit(2);
        }
    };
    // Small memory matters more than throughput here: one runtime thread,
    // one short-lived helper thread for /proc walks, one malloc arena
    // (glibc gives each thread its own otherwise).
    // SAFETY: mallopt only tunes the allocator; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(1)
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(&listen)) {
        eprintln!("banger-agent: {e}");
        std::process::exit(1);
    }
}

async fn serve(listen: &str) -> std::io::Result<()> {
    let app = banger_agent::router();
    // A guest the host saves and restores has a virtio-serial port instead
    // of vsock; the host says so on the kernel command line.
    if banger_agent::serial::selected() {
        return banger_agent::serial::serve(app).await;
    }
    match listen.split_once(':') {
        Some(("vsock", port)) => {
            let port: u32 = port
                .parse()
                .map_err(|_| std::io::Error::other(format!("bad vsock port {port:?}")))?;
            let listener = tokio_vsock::VsockListener::bind(tokio_vsock::VsockAddr::new(
                tokio_vsock::VMADDR_CID_ANY,
                port,
            ))?;
            axum::serve(listener, app).await
        }
        Some(("unix", path)) => {
            let _ = std::fs::remove_file(path);
            let listener = tokio::net::UnixListener::bind(path)?;
            axum::serve(listener, app).await
        }
        _ => Err(std::io::Error::other(format!(
            "--listen {listen:?}: use vsock:PORT or unix:PATH"
        ))),
    }
}
