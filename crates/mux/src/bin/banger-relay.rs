//! `banger-relay --serial SOCKET --listen PATH`: the host end of a QEMU
//! guest's agent channel. It connects to the chardev socket QEMU serves
//! for the guest's virtio-serial port, and serves PATH (the VM's vsock
//! socket) with Firecracker's hybrid-vsock handshake: a client writes
//! `CONNECT <port>\n`, reads `OK <id>\n`, and then has the guest's stream.
//!
//! It runs beside QEMU for the VM's life (the daemon records it like the
//! VMM) and exits when QEMU's socket stays gone.

use std::path::PathBuf;
use std::time::Duration;

use banger_mux::Link;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// How long QEMU's socket may be missing before the relay gives up.
const QEMU_GONE: Duration = Duration::from_secs(5);
/// How long the guest may take to accept a stream (an emulated guest under
/// load takes seconds).
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest handshake line accepted.
const MAX_LINE: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (serial, listen) = match args.as_slice() {
        [_, a, serial, b, listen] if a == "--serial" && b == "--listen" => {
            (PathBuf::from(serial), PathBuf::from(listen))
        }
        [_, flag] if flag == "--version" => {
            println!("banger-relay {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        _ => {
            eprintln!("usage: banger-relay --serial QEMU_CHARDEV_SOCKET --listen VSOCK_SOCKET");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(relay(serial, listen)) {
        eprintln!("banger-relay: {e}");
        std::process::exit(1);
    }
}

async fn relay(serial: PathBuf, listen: PathBuf) -> std::io::Result<()> {
    let _ = std::fs::remove_file(&listen);
    let listener = UnixListener::bind(&listen)?;
    let link = Link::host();
    let serving = {
        let link = link.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    // Out of descriptors, say: not a reason to spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let link = link.clone();
                tokio::spawn(async move {
                    if let Err(e) = forward(client, &link).await {
                        eprintln!("banger-relay: a client connection: {e}");
                    }
                });
            }
        })
    };
    loop {
        let qemu = connect(&serial).await?;
        eprintln!("banger-relay: connected to {}", serial.display());
        let (reader, writer) = qemu.into_split();
        link.run(reader, writer).await;
        eprintln!("banger-relay: {} ended", serial.display());
        if serving.is_finished() {
            return Err(std::io::Error::other("the listener stopped"));
        }
    }
}

/// Connects to QEMU's chardev socket, waiting while it is not there yet.
async fn connect(serial: &std::path::Path) -> std::io::Result<UnixStream> {
    let deadline = tokio::time::Instant::now() + QEMU_GONE;
    loop {
        match UnixStream::connect(serial).await {
            Ok(stream) => return Ok(stream),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("QEMU's agent socket {}: {e}", serial.display()),
                ))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// One client: the handshake, then bytes both ways until either side ends.
async fn forward(client: UnixStream, link: &Link) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut line = String::new();
    let mut limited = (&mut client).take(MAX_LINE as u64);
    tokio::time::timeout(Duration::from_secs(5), limited.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("no CONNECT line within 5 s"))??;
    if line.is_empty() {
        // Connected and left (someone checking that the socket answers).
        return Ok(());
    }
    let port = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("CONNECT "))
        .and_then(|p| p.trim().parse::<u32>().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad handshake {line:?}")))?;
    // A refusal closes the connection without `OK`, as Firecracker does.
    // An agent that stopped without a word (killed) never answers.
    let mut guest = tokio::time::timeout(OPEN_TIMEOUT, link.open(port))
        .await
        .map_err(|_| std::io::Error::other("the guest did not answer the open in time"))??;
    // Whatever the client sent after its line belongs to the guest.
    let early = client.buffer().to_vec();
    let mut client = client.into_inner();
    guest.write_all(&early).await?;
    client.write_all(format!("OK {port}\n").as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut guest).await?;
    Ok(())
}
