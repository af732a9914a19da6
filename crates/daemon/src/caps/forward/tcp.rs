//! TCP forwards: each accepted connection is joined to a new connection to
//! the guest; one the guest refuses (or a stopped VM) is closed at once.

use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::Route;

pub(super) async fn serve(listener: TcpListener, route: Route) {
    loop {
        let Ok((client, peer)) = listener.accept().await else {
            continue;
        };
        let route = route.clone();
        tokio::spawn(async move {
            let Some(guest) = route.guest() else {
                tracing::debug!(%peer, "forward: the VM is not running; refused");
                return;
            };
            let connect = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(guest));
            let Ok(Ok(upstream)) = connect.await else {
                tracing::debug!(%peer, %guest, "forward: nothing answers in the guest; refused");
                return;
            };
            relay(client, upstream, route).await;
        });
    }
}

async fn relay(mut client: TcpStream, mut upstream: TcpStream, route: Route) {
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        () = route.stopped() => {}
    }
}
