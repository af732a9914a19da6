//! The frames on the wire, and a decoder that finds its footing again in a
//! stream that starts (or restarts) in the middle of a frame.
//!
//! A restored guest, or a relay started afresh, meets a byte stream whose
//! other end may have been cut mid-frame. The control frames (HELLO,
//! HELLO_ACK, READY, BYE) carry a magic string the decoder hunts for while it is
//! out of step, and each is sent behind [`PADDING`] zero bytes: zeros are
//! one-byte PAD frames, and enough of them complete any frame the receiver
//! was half-way through, so the control frame after them always parses.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest DATA payload.
pub const MAX_DATA: usize = 32 * 1024;
/// Header of a stream frame: type, stream id, and a u32 field.
const HEADER: usize = 9;
/// Zeros sent ahead of a control frame: more than the longest frame.
pub const PADDING: usize = HEADER + MAX_DATA + 1;
const MAGIC: &[u8; 16] = b"banger-mux-v1\0\0\0";

const PAD: u8 = 0x00;
const HELLO: u8 = 0x01;
const HELLO_ACK: u8 = 0x02;
const READY: u8 = 0x03;
const BYE: u8 = 0x04;
const OPEN: u8 = 0x10;
const OPENED: u8 = 0x11;
const DATA: u8 = 0x12;
const CREDIT: u8 = 0x13;
const EOF: u8 = 0x14;
const CLOSE: u8 = 0x15;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Host → guest: a new host end; drop every stream and answer.
    Hello(u64),
    /// Guest → host: every stream dropped; streams may be opened.
    HelloAck(u64),
    /// Guest → host: the agent (re)started and knows no streams.
    Ready,
    /// Guest → host: the agent is stopping; nothing will accept streams
    /// until it says READY again.
    Bye,
    /// Host → guest: stream `id` to guest port `port`.
    Open {
        id: u32,
        port: u32,
    },
    /// Guest → host: stream `id` accepted.
    Opened(u32),
    Data(u32, Bytes),
    /// The receiver consumed `n` more bytes of stream `id`.
    Credit(u32, u32),
    /// The sender will write no more on stream `id`.
    Eof(u32),
    /// Stream `id` is gone (refused, or its reader left).
    Close(u32),
}

impl Frame {
    /// The frame's bytes; control frames come behind their padding.
    pub fn encode(&self, out: &mut BytesMut) {
        let stream = |out: &mut BytesMut, kind: u8, id: u32, value: u32| {
            out.put_u8(kind);
            out.put_u32(id);
            out.put_u32(value);
        };
        let control = |out: &mut BytesMut, kind: u8, nonce: Option<u64>| {
            out.put_bytes(PAD, PADDING);
            out.put_u8(kind);
            out.put_slice(MAGIC);
            if let Some(nonce) = nonce {
                out.put_u64(nonce);
            }
        };
        match self {
            Frame::Hello(nonce) => control(out, HELLO, Some(*nonce)),
            Frame::HelloAck(nonce) => control(out, HELLO_ACK, Some(*nonce)),
            Frame::Ready => control(out, READY, None),
            Frame::Bye => control(out, BYE, None),
            Frame::Open { id, port } => stream(out, OPEN, *id, *port),
            Frame::Opened(id) => stream(out, OPENED, *id, 0),
            Frame::Data(id, data) => {
                debug_assert!(data.len() <= MAX_DATA);
                stream(out, DATA, *id, u32::try_from(data.len()).unwrap_or(0));
                out.put_slice(data);
            }
            Frame::Credit(id, n) => stream(out, CREDIT, *id, *n),
            Frame::Eof(id) => stream(out, EOF, *id, 0),
            Frame::Close(id) => stream(out, CLOSE, *id, 0),
        }
    }
}

/// Turns received bytes into frames. Starts out of step: nothing before
/// the first control frame counts.
#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
    in_step: bool,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            if !self.in_step && !self.hunt() {
                return None;
            }
            let kind = *self.buf.first()?;
            match kind {
                PAD => {
                    // Runs of padding go at once rather than byte by byte.
                    let zeros = self.buf.iter().take_while(|b| **b == PAD).count();
                    self.buf.advance(zeros);
                }
                HELLO | HELLO_ACK | READY | BYE => {
                    let nonce = matches!(kind, HELLO | HELLO_ACK);
                    let len = 1 + MAGIC.len() + if nonce { 8 } else { 0 };
                    if self.buf.len() < len {
                        return None;
                    }
                    if &self.buf[1..=MAGIC.len()] != MAGIC {
                        self.in_step = false;
                        self.buf.advance(1);
                        continue;
                    }
                    let mut frame = self.buf.split_to(len);
                    frame.advance(1 + MAGIC.len());
                    return Some(match kind {
                        HELLO => Frame::Hello(frame.get_u64()),
                        HELLO_ACK => Frame::HelloAck(frame.get_u64()),
                        READY => Frame::Ready,
                        _ => Frame::Bye,
                    });
                }
                OPEN | OPENED | DATA | CREDIT | EOF | CLOSE => {
                    if self.buf.len() < HEADER {
                        return None;
                    }
                    let id =
                        u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                    let value =
                        u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
                    if kind == DATA {
                        let len = usize::try_from(value).unwrap_or(usize::MAX);
                        if len > MAX_DATA {
                            self.in_step = false;
                            self.buf.advance(1);
                            continue;
                        }
                        if self.buf.len() < HEADER + len {
                            return None;
                        }
                        self.buf.advance(HEADER);
                        return Some(Frame::Data(id, self.buf.split_to(len).freeze()));
                    }
                    self.buf.advance(HEADER);
                    return Some(match kind {
                        OPEN => Frame::Open { id, port: value },
                        OPENED => Frame::Opened(id),
                        CREDIT => Frame::Credit(id, value),
                        EOF => Frame::Eof(id),
                        _ => Frame::Close(id),
                    });
                }
                _ => {
                    self.in_step = false;
                    self.buf.advance(1);
                }
            }
        }
    }

    /// Out of step: drops bytes up to the next control frame's start;
    /// whether one was found (else only a possible partial start is kept).
    fn hunt(&mut self) -> bool {
        let found = self
            .buf
            .windows(1 + MAGIC.len())
            .position(|w| matches!(w[0], HELLO | HELLO_ACK | READY | BYE) && &w[1..] == MAGIC);
        match found {
            Some(at) => {
                self.buf.advance(at);
                self.in_step = true;
                true
            }
            None => {
                let keep = MAGIC.len().min(self.buf.len());
                let drop = self.buf.len() - keep;
                self.buf.advance(drop);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(frames: &[Frame]) -> BytesMut {
        let mut out = BytesMut::new();
        for f in frames {
            f.encode(&mut out);
        }
        out
    }

    fn decode_all(d: &mut Decoder) -> Vec<Frame> {
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn frames_round_trip_split_at_every_byte() {
        let frames = vec![
            Frame::Hello(7),
            Frame::Open { id: 1, port: 1024 },
            Frame::Data(1, Bytes::from_static(b"GET / HTTP/1.1\r\n")),
            Frame::Credit(1, 4096),
            Frame::Eof(1),
            Frame::Close(1),
            Frame::Opened(2),
            Frame::HelloAck(9),
            Frame::Ready,
            Frame::Bye,
        ];
        let wire = bytes(&frames);
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(1000) {
            d.push(chunk);
            got.extend(decode_all(&mut d));
        }
        assert_eq!(got, frames);
    }

    #[test]
    fn nothing_counts_before_the_first_control_frame() {
        let mut d = Decoder::default();
        let mut wire = bytes(&[Frame::Data(3, Bytes::from_static(b"stale")), Frame::Eof(3)]);
        wire.extend_from_slice(&bytes(&[Frame::Hello(1), Frame::Opened(4)]));
        d.push(&wire);
        assert_eq!(decode_all(&mut d), vec![Frame::Hello(1), Frame::Opened(4)]);
    }

    #[test]
    fn a_frame_cut_in_the_middle_does_not_swallow_the_next_hello() {
        // The old sender died 5 bytes into a large DATA frame.
        let mut d = Decoder::default();
        d.push(&bytes(&[Frame::Hello(1)]));
        assert_eq!(decode_all(&mut d), vec![Frame::Hello(1)]);
        let big = bytes(&[Frame::Data(1, Bytes::from(vec![7u8; MAX_DATA]))]);
        d.push(&big[..5]);
        d.push(&bytes(&[Frame::Hello(2), Frame::Open { id: 1, port: 5 }]));
        let got = decode_all(&mut d);
        assert_eq!(
            &got[got.len() - 2..],
            &[Frame::Hello(2), Frame::Open { id: 1, port: 5 }]
        );
    }

    #[test]
    fn garbage_puts_the_decoder_out_of_step_until_a_control_frame() {
        let mut d = Decoder::default();
        d.push(&bytes(&[Frame::Hello(1)]));
        d.push(b"\xffnot a frame at all");
        d.push(&bytes(&[Frame::Opened(3)]));
        d.push(&bytes(&[Frame::Ready, Frame::Opened(4)]));
        assert_eq!(
            decode_all(&mut d),
            vec![Frame::Hello(1), Frame::Ready, Frame::Opened(4)]
        );
    }
}
