//! Both ends of the channel over in-memory pipes, with a stand-in for
//! QEMU's chardev between them: it keeps the guest's end of the port and
//! carries bytes to whichever host end is connected now, as QEMU does
//! when a new relay connects to a guest restored from a snapshot.

use std::time::Duration;

use banger_mux::{Accepted, Link};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

const PORT: u32 = 1024;

/// A guest end serving PORT by echoing, behind a chardev stand-in; the
/// sender takes each new host end's pipe.
fn guest() -> mpsc::Sender<DuplexStream> {
    let (accepted_tx, mut accepted) = mpsc::channel::<Accepted>(16);
    let guest = Link::guest(vec![PORT], accepted_tx);
    let (port_guest, port_qemu) = tokio::io::duplex(16 * 1024);
    tokio::spawn(async move {
        let (r, w) = tokio::io::split(port_guest);
        guest.run(r, w).await;
    });
    tokio::spawn(async move {
        while let Some(Accepted { stream, .. }) = accepted.recv().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(stream);
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    let (hosts_tx, mut hosts) = mpsc::channel::<DuplexStream>(1);
    tokio::spawn(async move {
        let (mut qr, mut qw) = tokio::io::split(port_qemu);
        while let Some(host) = hosts.recv().await {
            let (mut hr, mut hw) = tokio::io::split(host);
            // Until the host end goes; the guest's port stays.
            tokio::select! {
                _ = tokio::io::copy(&mut hr, &mut qw) => {}
                _ = tokio::io::copy(&mut qr, &mut hw) => {}
            }
        }
    });
    hosts_tx
}

/// A host end connected through the stand-in; up once the guest answered.
async fn host(hosts: &mpsc::Sender<DuplexStream>) -> (Link, tokio::task::JoinHandle<()>) {
    let link = Link::host();
    let (ours, theirs) = tokio::io::duplex(16 * 1024);
    hosts.send(theirs).await.unwrap();
    let running = tokio::spawn({
        let link = link.clone();
        async move {
            let (r, w) = tokio::io::split(ours);
            link.run(r, w).await;
        }
    });
    tokio::time::timeout(Duration::from_secs(5), async {
        while !link.is_up() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the guest answered HELLO");
    (link, running)
}

async fn echo(link: &Link, len: usize, seed: u8) {
    let stream = link.open(PORT).await.unwrap();
    let data: Vec<u8> = (0..len)
        .map(|i| (i % 251).to_le_bytes()[0] ^ seed)
        .collect();
    let (mut r, mut w) = tokio::io::split(stream);
    let sent = data.clone();
    let writing = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    writing.await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "stream {seed} came back changed");
}

#[tokio::test]
async fn many_streams_at_once_each_get_their_own_bytes_back() {
    let hosts = guest();
    let (link, _running) = host(&hosts).await;
    let mut all = Vec::new();
    for seed in 1..=12u8 {
        let link = link.clone();
        all.push(tokio::spawn(
            async move { echo(&link, 1 << 20, seed).await },
        ));
    }
    for one in all {
        tokio::time::timeout(Duration::from_secs(30), one)
            .await
            .expect("in time")
            .unwrap();
    }
}

#[tokio::test]
async fn a_stream_nobody_reads_does_not_hold_up_the_others() {
    let hosts = guest();
    let (link, _running) = host(&hosts).await;
    // Its echo fills every buffer on the way back and then waits on us.
    let mut stuck = link.open(PORT).await.unwrap();
    let flood = tokio::spawn(async move {
        let chunk = vec![1u8; 64 * 1024];
        loop {
            if stuck.write_all(&chunk).await.is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::time::timeout(Duration::from_secs(10), echo(&link, 256 * 1024, 3))
        .await
        .expect("another stream still flows");
    flood.abort();
}

#[tokio::test]
async fn a_port_nothing_serves_is_refused_and_the_link_goes_on() {
    let hosts = guest();
    let (link, _running) = host(&hosts).await;
    let err = link.open(4242).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    echo(&link, 1000, 5).await;
}

#[tokio::test]
async fn a_new_host_end_resets_the_guest_even_after_a_frame_cut_in_two() {
    let hosts = guest();
    let (first, running) = host(&hosts).await;
    // A stream left open, with a large write in flight when the end goes.
    let mut left = first.open(PORT).await.unwrap();
    left.write_all(&vec![9u8; 200 * 1024]).await.unwrap();
    running.abort();
    let _ = running.await;

    let (second, _running) = host(&hosts).await;
    echo(&second, 300 * 1024, 7).await;
    // The old stream ended with its end; nothing of it comes back now.
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), left.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "the old end's stream did not end with it");
}

#[tokio::test]
async fn opening_before_the_guest_answered_is_refused_not_hung() {
    let link = Link::host();
    let err = link.open(PORT).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
}

#[tokio::test]
async fn after_the_guest_says_goodbye_opens_are_refused_at_once() {
    let (accepted_tx, _accepted) = mpsc::channel::<Accepted>(16);
    let guest = Link::guest(vec![PORT], accepted_tx);
    let (g, h) = tokio::io::duplex(64 * 1024);
    tokio::spawn({
        let guest = guest.clone();
        async move {
            let (r, w) = tokio::io::split(g);
            guest.run(r, w).await;
        }
    });
    let (tx, mut rx) = mpsc::channel(1);
    tx.send(h).await.unwrap();
    let host = Link::host();
    let h = rx.recv().await.unwrap();
    tokio::spawn({
        let host = host.clone();
        async move {
            let (r, w) = tokio::io::split(h);
            host.run(r, w).await;
        }
    });
    while !host.is_up() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    guest.say_goodbye().await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while host.is_up() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the host heard BYE");
    let err = tokio::time::timeout(Duration::from_secs(1), host.open(PORT))
        .await
        .expect("refused at once")
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
}

#[tokio::test]
async fn a_guest_that_floods_and_never_reads_loses_the_link_not_the_host_its_memory() {
    use banger_mux::frame::Frame;
    let host = Link::host();
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (r, w) = tokio::io::split(ours);
    let running = tokio::spawn({
        let host = host.clone();
        async move { host.run(r, w).await }
    });
    // Each READY asks for a HELLO behind 32 KiB of padding; nothing reads them.
    let (_unread, mut theirs_w) = tokio::io::split(theirs);
    let mut ready = bytes::BytesMut::new();
    Frame::Ready.encode(&mut ready);
    let flood = tokio::spawn(async move {
        for _ in 0..10_000 {
            if theirs_w.write_all(&ready).await.is_err() {
                break;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the host dropped the flooding byte stream")
        .unwrap();
    flood.abort();
}
