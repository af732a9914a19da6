//! One end of the multiplexed channel. [`Link::run`] drives one byte
//! stream (a connection to QEMU's chardev on the host, the virtio port in
//! the guest) until it ends; the streams it carries are tokio duplex pipes
//! the callers read and write as sockets.
//!
//! Flow control: a sender has [`WINDOW`] bytes of credit per stream and
//! the receiver returns credit as its reader consumes, so one stream whose
//! reader is slow never stalls the others, and nothing buffers more than a
//! window per stream. A peer that sends beyond its credit loses the stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::AbortHandle;

use crate::frame::{Decoder, Frame, MAX_DATA};

/// Unacknowledged bytes a sender may have in flight on one stream.
pub const WINDOW: usize = 256 * 1024;
/// The pipe between a stream and its caller.
const PIPE: usize = 64 * 1024;
/// Bytes of frames queued for the byte stream beyond which the peer is
/// taken to be flooding (or no longer reading): the byte stream is dropped
/// and its streams with it. Honest traffic stays far below (credit bounds
/// each stream to a window).
const MAX_QUEUED: usize = 64 * 1024 * 1024;

/// Where frames for the current byte stream go, with what they cost.
#[derive(Clone)]
struct Out {
    tx: mpsc::UnboundedSender<Frame>,
    queued: Arc<AtomicUsize>,
    flooded: Arc<std::sync::atomic::AtomicBool>,
}

impl Out {
    /// Queues a frame; false when the byte stream is gone or flooded.
    fn send(&self, frame: Frame) -> bool {
        let cost = frame_cost(&frame);
        if self.queued.fetch_add(cost, Ordering::SeqCst) + cost > MAX_QUEUED {
            self.flooded.store(true, Ordering::SeqCst);
            return false;
        }
        self.tx.send(frame).is_ok()
    }
}

fn frame_cost(frame: &Frame) -> usize {
    match frame {
        Frame::Data(_, data) => 9 + data.len(),
        Frame::Hello(_) | Frame::HelloAck(_) | Frame::Ready | Frame::Bye => {
            crate::frame::PADDING + 25
        }
        _ => 9,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Opens streams; says HELLO on every new byte stream.
    Host,
    /// Accepts streams on the ports it serves; says READY when it starts.
    Guest,
}

/// A stream the guest accepted: the port the host asked for and the pipe.
pub struct Accepted {
    pub port: u32,
    pub stream: DuplexStream,
}

#[derive(Clone)]
pub struct Link {
    shared: Arc<Shared>,
}

struct Shared {
    side: Side,
    /// Guest: the ports served and where accepted streams go.
    accept: Option<(Vec<u32>, mpsc::Sender<Accepted>)>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The current byte stream's outgoing frames; None between streams.
    out: Option<Out>,
    /// Host: HELLO answered. Guest: a HELLO arrived.
    up: bool,
    nonce: u64,
    next_id: u32,
    streams: HashMap<u32, Entry>,
    opening: HashMap<u32, oneshot::Sender<bool>>,
}

struct Entry {
    inbound: mpsc::UnboundedSender<Option<Bytes>>,
    credit: Arc<Semaphore>,
    /// Received but not yet handed to the reader.
    unread: Arc<AtomicUsize>,
    tasks: [AbortHandle; 2],
    sent_eof: bool,
    got_eof: bool,
}

impl Drop for Entry {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Link {
    pub fn host() -> Link {
        Link::new(Side::Host, None)
    }

    /// A guest end serving `ports`; accepted streams arrive on `accepted`.
    pub fn guest(ports: Vec<u32>, accepted: mpsc::Sender<Accepted>) -> Link {
        Link::new(Side::Guest, Some((ports, accepted)))
    }

    fn new(side: Side, accept: Option<(Vec<u32>, mpsc::Sender<Accepted>)>) -> Link {
        Link {
            shared: Arc::new(Shared {
                side,
                accept,
                state: Mutex::new(State {
                    next_id: 1,
                    ..State::default()
                }),
            }),
        }
    }

    /// Whether streams can be opened (host) or are being served (guest).
    pub fn is_up(&self) -> bool {
        self.shared.lock().up
    }

    /// Host: a stream to guest port `port`. Refused when the guest end is
    /// not there yet or nothing serves the port.
    pub async fn open(&self, port: u32) -> std::io::Result<DuplexStream> {
        let (answer, answered) = oneshot::channel();
        let (id, user) = {
            let mut state = self.shared.lock();
            let out = match (&state.out, state.up) {
                (Some(out), true) => out.clone(),
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotConnected,
                        "the guest end of the agent channel is not there (yet)",
                    ))
                }
            };
            let id = state.next_id;
            state.next_id = state.next_id.wrapping_add(1).max(1);
            let user = self.shared.add_stream(&mut state, id, out.clone());
            state.opening.insert(id, answer);
            out.send(Frame::Open { id, port });
            (id, user)
        };
        // A caller that stops waiting (a timeout) takes the stream with it.
        let mut pending = Pending {
            shared: &self.shared,
            id,
            opened: false,
        };
        match answered.await {
            Ok(true) => {
                pending.opened = true;
                Ok(user)
            }
            _ => {
                drop(pending);
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!("nothing in the guest accepted port {port}"),
                ))
            }
        }
    }

    /// Guest: tells the host this end is going away (the agent stops), and
    /// gives the frame a moment to leave.
    pub async fn say_goodbye(&self) {
        self.shared.lock().send(Frame::Bye);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    /// Drives one byte stream until it ends (end of file or an error);
    /// every stream it carried is dropped then.
    pub async fn run<R, W>(&self, mut reader: R, writer: W)
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, frames) = mpsc::unbounded_channel();
        let out = Out {
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            flooded: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let (queued, flooded) = (out.queued.clone(), out.flooded.clone());
        {
            let mut state = self.shared.lock();
            state.reset();
            state.out = Some(out.clone());
            state.nonce = nonce();
            let first = match self.shared.side {
                Side::Host => Frame::Hello(state.nonce),
                Side::Guest => Frame::Ready,
            };
            out.send(first);
        }
        drop(out);
        let _end = EndOfRun(&self.shared);
        // Dropped with this future too (a caller may abort it).
        let writing = AbortOnDrop(tokio::spawn(write_frames(frames, writer, queued)));
        let mut decoder = Decoder::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => decoder.push(&buf[..n]),
            }
            while let Some(frame) = decoder.next_frame() {
                self.shared.receive(frame);
            }
            if writing.0.is_finished() || flooded.load(Ordering::SeqCst) {
                break;
            }
        }
    }
}

/// A stream being opened; forgotten unless the guest accepted it.
struct Pending<'a> {
    shared: &'a Shared,
    id: u32,
    opened: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.opened {
            let mut state = self.shared.lock();
            state.opening.remove(&self.id);
            if state.streams.remove(&self.id).is_some() {
                // The guest may have accepted it meanwhile, or will.
                state.send(Frame::Close(self.id));
            }
        }
    }
}

/// Ends a run however its future ends (returned, or dropped by an abort):
/// its streams go, and nothing more is queued for its byte stream.
struct EndOfRun<'a>(&'a Shared);

impl Drop for EndOfRun<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.reset();
        state.out = None;
    }
}

impl State {
    fn reset(&mut self) {
        self.up = false;
        self.streams.clear();
        self.opening.clear();
    }

    fn send(&self, frame: Frame) {
        if let Some(out) = &self.out {
            out.send(frame);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn receive(self: &Arc<Self>, frame: Frame) {
        let mut accepted = None;
        {
            let mut state = self.lock();
            match (self.side, frame) {
                (Side::Host, Frame::HelloAck(nonce)) if nonce == state.nonce => {
                    state.up = true;
                }
                (Side::Host, Frame::HelloAck(_)) => {}
                (Side::Host, Frame::Bye) => {
                    // Until the agent is back (READY), opens are refused
                    // at once rather than left unanswered.
                    state.reset();
                }
                (Side::Host, Frame::Ready) => {
                    // The agent started afresh: what it knew is gone.
                    state.reset();
                    let nonce = state.nonce;
                    state.send(Frame::Hello(nonce));
                }
                (Side::Guest, Frame::Hello(nonce)) => {
                    state.reset();
                    state.up = true;
                    state.send(Frame::HelloAck(nonce));
                }
                (_, _) if !state.up => {}
                (Side::Host, Frame::Opened(id)) => match state.opening.remove(&id) {
                    Some(answer) => {
                        let _ = answer.send(true);
                    }
                    // Accepted after the opener gave up: the guest lets it go.
                    None if !state.streams.contains_key(&id) => state.send(Frame::Close(id)),
                    None => {}
                },
                (Side::Guest, Frame::Open { id, port }) => {
                    let (ports, queue) = self.accept.as_ref().expect("a guest end accepts");
                    let out = state.out.clone();
                    match out {
                        Some(out) if ports.contains(&port) && !state.streams.contains_key(&id) => {
                            let stream = self.add_stream(&mut state, id, out);
                            state.send(Frame::Opened(id));
                            accepted = Some((queue.clone(), id, Accepted { port, stream }));
                        }
                        _ => state.send(Frame::Close(id)),
                    }
                }
                // Empty data carries nothing and earns no credit.
                (_, Frame::Data(_, data)) if data.is_empty() => {}
                (_, Frame::Data(id, data)) => match state.streams.get(&id) {
                    Some(entry) => {
                        let unread = entry.unread.fetch_add(data.len(), Ordering::SeqCst);
                        if unread + data.len() > WINDOW || entry.inbound.send(Some(data)).is_err() {
                            state.streams.remove(&id);
                            state.send(Frame::Close(id));
                        }
                    }
                    None => state.send(Frame::Close(id)),
                },
                (_, Frame::Credit(id, n)) => {
                    if let Some(entry) = state.streams.get(&id) {
                        let room = WINDOW.saturating_sub(entry.credit.available_permits());
                        entry
                            .credit
                            .add_permits(usize::try_from(n).unwrap_or(room).min(room));
                    }
                }
                (_, Frame::Eof(id)) => {
                    if let Some(entry) = state.streams.get(&id) {
                        let _ = entry.inbound.send(None);
                    }
                }
                (_, Frame::Close(id)) => {
                    if let Some(answer) = state.opening.remove(&id) {
                        let _ = answer.send(false);
                    }
                    state.streams.remove(&id);
                }
                // Frames that do not belong to this side are ignored.
                _ => {}
            }
        }
        if let Some((queue, id, stream)) = accepted {
            let _ = queue.try_send(stream).map_err(|_| {
                let mut state = self.lock();
                state.streams.remove(&id);
                state.send(Frame::Close(id));
            });
        }
    }

    /// Records stream `id` and starts its two pumps; the caller's pipe.
    fn add_stream(self: &Arc<Self>, state: &mut State, id: u32, out: Out) -> DuplexStream {
        let (user, engine) = tokio::io::duplex(PIPE);
        let (mut from_user, mut to_user) = tokio::io::split(engine);
        let credit = Arc::new(Semaphore::new(WINDOW));
        let unread = Arc::new(AtomicUsize::new(0));
        let (inbound, mut received) = mpsc::unbounded_channel::<Option<Bytes>>();

        let sending = tokio::spawn({
            let (out, credit, shared) = (out.clone(), credit.clone(), Arc::downgrade(self));
            async move {
                let mut buf = vec![0u8; MAX_DATA];
                loop {
                    let n = match from_user.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let Ok(permits) = credit.acquire_many(u32::try_from(n).unwrap_or(0)).await
                    else {
                        return;
                    };
                    permits.forget();
                    if !out.send(Frame::Data(id, Bytes::copy_from_slice(&buf[..n]))) {
                        return;
                    }
                }
                out.send(Frame::Eof(id));
                if let Some(shared) = shared.upgrade() {
                    shared.half_done(id, true);
                }
            }
        });
        let receiving = tokio::spawn({
            let (unread, shared) = (unread.clone(), Arc::downgrade(self));
            async move {
                while let Some(item) = received.recv().await {
                    match item {
                        Some(data) => {
                            if to_user.write_all(&data).await.is_err() {
                                // The caller left: the sender learns it.
                                out.send(Frame::Close(id));
                                if let Some(shared) = shared.upgrade() {
                                    shared.lock().streams.remove(&id);
                                }
                                return;
                            }
                            unread.fetch_sub(data.len(), Ordering::SeqCst);

                            out.send(Frame::Credit(id, u32::try_from(data.len()).unwrap_or(0)));
                        }
                        None => {
                            let _ = to_user.shutdown().await;
                            if let Some(shared) = shared.upgrade() {
                                shared.half_done(id, false);
                            }
                            return;
                        }
                    }
                }
            }
        });
        state.streams.insert(
            id,
            Entry {
                inbound,
                credit,
                unread,
                tasks: [sending.abort_handle(), receiving.abort_handle()],
                sent_eof: false,
                got_eof: false,
            },
        );
        user
    }

    /// One direction of stream `id` ended; both ended: it is forgotten.
    fn half_done(&self, id: u32, sent: bool) {
        let mut state = self.lock();
        let Some(entry) = state.streams.get_mut(&id) else {
            return;
        };
        if sent {
            entry.sent_eof = true;
        } else {
            entry.got_eof = true;
        }
        if entry.sent_eof && entry.got_eof {
            state.streams.remove(&id);
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn write_frames<W: AsyncWrite + Unpin>(
    mut frames: mpsc::UnboundedReceiver<Frame>,
    mut writer: W,
    queued: Arc<AtomicUsize>,
) {
    let mut buf = BytesMut::new();
    let take = |frame: Frame, buf: &mut BytesMut| {
        queued.fetch_sub(frame_cost(&frame), Ordering::SeqCst);
        frame.encode(buf);
    };
    while let Some(frame) = frames.recv().await {
        take(frame, &mut buf);
        // Whatever else is queued goes in the same write.
        while buf.len() < 256 * 1024 {
            match frames.try_recv() {
                Ok(frame) => take(frame, &mut buf),
                Err(_) => break,
            }
        }
        if writer.write_all(&buf).await.is_err() || writer.flush().await.is_err() {
            return;
        }
        buf.clear();
    }
}

/// A value that differs between runs and processes.
fn nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}
