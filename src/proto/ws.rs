//! RFC 6455 frames, server side: a pure header decoder over `&[u8]`, an [`Assembler`] that turns
//! the bytes a client sent into complete [`Event`]s, and encoders that build each server frame
//! once as a `Bytes` so a broadcast can clone it to every subscriber without copying.
//!
//! Why our own codec rather than tungstenite: the reactor owns the socket and a `BytesMut` read
//! buffer per connection, and wants (a) no intermediate copies of client payloads — the
//! assembler unmasks in place and hands out `split_to(..).freeze()` slices of that buffer — and
//! (b) encoded frames as `Bytes` it can share. tungstenite stays a dev-dependency and is used in
//! the tests below as an independent client to cross-check both directions.
//!
//! Invariants and policy:
//! * No extensions are negotiated, so any RSV bit is a protocol error (1002).
//! * Client frames must be masked (RFC 6455 §5.1); server frames are never masked.
//! * Errors are sticky: once `next_event` returned `Err`, it keeps returning that error. The
//!   reactor answers with a close frame carrying [`WsError::close_code`] and closes.
//! * Failing fast (Autobahn 6.4.x): text payload is validated as it arrives, even inside a
//!   frame whose tail is still on the wire, and a message that would exceed `max_message` is
//!   rejected as soon as its header is seen, before any of its payload is buffered.
//! * After a Close event the assembler is finished: it returns `Ok(None)` and consumes nothing
//!   more (RFC 6455 §5.5.1: no data after a close).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Largest possible frame header: 2 bytes + 8 bytes of 64-bit length + 4 bytes of mask.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload of a control frame (close, ping, pong), RFC 6455 §5.5.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Longest close reason that still fits a control frame after the 2-byte code.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    Continue,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl OpCode {
    /// The opcode for the low nibble of the first header byte; `None` for reserved ones.
    pub fn from_u8(nibble: u8) -> Option<OpCode> {
        match nibble {
            0 => Some(OpCode::Continue),
            1 => Some(OpCode::Text),
            2 => Some(OpCode::Binary),
            8 => Some(OpCode::Close),
            9 => Some(OpCode::Ping),
            10 => Some(OpCode::Pong),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continue => 0,
            OpCode::Text => 1,
            OpCode::Binary => 2,
            OpCode::Close => 8,
            OpCode::Ping => 9,
            OpCode::Pong => 10,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between fragments.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    #[error("invalid UTF-8 in text message")]
    InvalidUtf8,
    #[error("message too big")]
    TooBig,
}

impl WsError {
    /// The close code to send for this error (1002, 1007, 1009).
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::InvalidUtf8 => 1007,
            WsError::TooBig => 1009,
        }
    }
}

/// A complete event for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// `code` is None for an empty close payload.
    Close {
        code: Option<u16>,
        reason: Bytes,
    },
}

/// `N` bytes at `at`, or `None` if the buffer is too short.
fn array_at<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Decode one frame header. `Ok(None)` = incomplete.
///
/// Everything that can be judged from the first two bytes (RSV bits, opcode, control frame
/// rules) is judged before the extended length arrives, so a bad frame fails without waiting.
/// Non-minimal length encodings are accepted (RFC 6455 requires minimal ones of senders only).
pub fn decode_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, WsError> {
    let Some([b0, b1]) = array_at::<2>(buf, 0) else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(WsError::Protocol("reserved bits set without an extension"));
    }
    let opcode = OpCode::from_u8(b0 & 0x0f).ok_or(WsError::Protocol("reserved opcode"))?;
    let fin = b0 & 0x80 != 0;
    let len7 = b1 & 0x7f;
    if opcode.is_control() {
        if !fin {
            return Err(WsError::Protocol("fragmented control frame"));
        }
        if usize::from(len7) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::Protocol("control frame payload over 125 bytes"));
        }
    }
    let (payload_len, mut pos) = match len7 {
        126 => match array_at::<2>(buf, 2) {
            Some(b) => (u64::from(u16::from_be_bytes(b)), 4),
            None => return Ok(None),
        },
        127 => {
            // The most significant bit of a 64-bit length must be 0 (§5.2); check it as soon
            // as its byte is here.
            if buf.get(2).is_some_and(|&hi| hi & 0x80 != 0) {
                return Err(WsError::Protocol("64-bit payload length with the MSB set"));
            }
            match array_at::<8>(buf, 2) {
                Some(b) => (u64::from_be_bytes(b), 10),
                None => return Ok(None),
            }
        }
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let Some(m) = array_at::<4>(buf, pos) else {
            return Ok(None);
        };
        pos += 4;
        Some(m)
    } else {
        None
    };
    let header = FrameHeader {
        fin,
        opcode,
        mask,
        payload_len,
    };
    Ok(Some((header, pos)))
}

/// XOR `buf` with the mask, as if `buf` started at payload offset 0.
///
/// Eight bytes per step as one `u64` XOR (the compiler vectorises the loop further); the mask
/// repeats every 4 bytes, so the 8-byte pattern is the mask twice and every chunk starts at
/// phase 0. No `unsafe`: `chunks_exact_mut` gives unaligned-safe 8-byte windows.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let [m0, m1, m2, m3] = mask;
    let wide = u64::from_ne_bytes([m0, m1, m2, m3, m0, m1, m2, m3]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(word) = <[u8; 8]>::try_from(&*chunk) {
            chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
        }
    }
    // Up to 7 bytes: the mask cycles.
    for (b, m) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *b ^= m;
    }
}

/// XOR `buf` with the mask, as if `buf` started at payload offset `offset`: lets a payload be
/// unmasked piecewise as it arrives.
pub fn apply_mask_at(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    // Rotating the big-endian word left by one byte turns [m0 m1 m2 m3] into [m1 m2 m3 m0].
    let shift = 8 * (offset & 3) as u32;
    let rotated = u32::from_be_bytes(mask).rotate_left(shift).to_be_bytes();
    apply_mask(buf, rotated);
}

/// Length of a frame header for this payload length (with or without a mask key).
pub fn header_len(payload_len: usize, masked: bool) -> usize {
    let base = match payload_len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    };
    if masked {
        base + 4
    } else {
        base
    }
}

/// Write a header with the minimal length encoding.
fn put_header(out: &mut impl BufMut, op: OpCode, fin: bool, len: usize, mask: Option<[u8; 4]>) {
    let fin_bit = if fin { 0x80 } else { 0 };
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    out.put_u8(fin_bit | op.as_u8());
    match len {
        0..=125 => out.put_u8(mask_bit | len as u8),
        126..=0xffff => {
            out.put_u8(mask_bit | 126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(mask_bit | 127);
            out.put_u64(len as u64);
        }
    }
    if let Some(m) = mask {
        out.put_slice(&m);
    }
}

/// A complete unmasked server frame (FIN set), encoded once and shareable.
///
/// One allocation of exactly header + payload bytes: `Bytes::from(Vec)` with `len == capacity`
/// takes the buffer over without reallocating.
pub fn encode_frame(op: OpCode, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(header_len(payload.len(), false) + payload.len());
    put_header(&mut out, op, true, payload.len(), None);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

/// Append a complete unmasked server frame (FIN set) to `out`, e.g. to batch several frames
/// into one write.
pub fn encode_frame_into(op: OpCode, payload: &[u8], out: &mut BytesMut) {
    out.reserve(header_len(payload.len(), false) + payload.len());
    put_header(out, op, true, payload.len(), None);
    out.extend_from_slice(payload);
}

/// `encode_frame(OpCode::Text, payload)`.
pub fn encode_text(payload: &[u8]) -> Bytes {
    encode_frame(OpCode::Text, payload)
}

/// A close frame with a status code and reason.
///
/// The reason is cut to [`MAX_CLOSE_REASON`] bytes (at a char boundary) so the frame stays a
/// valid control frame whatever the caller passes.
pub fn encode_close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1; // terminates: 0 is always a char boundary
    }
    let reason = reason.as_bytes().get(..end).unwrap_or_default();
    let len = 2 + reason.len();
    let mut out = Vec::with_capacity(header_len(len, false) + len);
    put_header(&mut out, OpCode::Close, true, len, None);
    out.put_u16(code);
    out.extend_from_slice(reason);
    Bytes::from(out)
}

/// The reply to a client's close frame: echo its code (RFC 6455 §5.5.1), or an empty close
/// frame if it sent none.
pub fn encode_close_reply(code: Option<u16>) -> Bytes {
    match code {
        Some(code) => encode_close(code, ""),
        None => encode_frame(OpCode::Close, &[]),
    }
}

/// A masked client frame, for tests and the bench client (the server never masks).
pub fn encode_masked(op: OpCode, payload: &[u8], mask: [u8; 4], fin: bool) -> Vec<u8> {
    let hlen = header_len(payload.len(), true);
    let mut out = Vec::with_capacity(hlen + payload.len());
    put_header(&mut out, op, fin, payload.len(), Some(mask));
    out.extend_from_slice(payload);
    if let Some(body) = out.get_mut(hlen..) {
        apply_mask(body, mask);
    }
    out
}

/// Close codes a peer may send (RFC 6455 §7.4.1; 3000-4999 for libraries and applications).
/// 1004-1006 and 1015 must never appear on the wire; 1012-1014 and 1016-2999 are unassigned
/// by RFC 6455 and rejected, as Autobahn 7.9.x expects.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// Incremental UTF-8 validation across fragments and partial frames: carries the incomplete
/// trailing code point (at most 3 bytes) from one chunk to the next.
#[derive(Clone, Copy, Debug, Default)]
struct Utf8Carry {
    pending: [u8; 4],
    len: usize,
}

impl Utf8Carry {
    fn feed(&mut self, mut input: &[u8]) -> Result<(), WsError> {
        // First complete the carried code point, one byte at a time: std reports an invalid
        // prefix (`error_len() == Some`) as soon as the offending byte is seen.
        while self.len > 0 {
            let Some((&b, rest)) = input.split_first() else {
                return Ok(());
            };
            *self.pending.get_mut(self.len).ok_or(WsError::InvalidUtf8)? = b;
            self.len += 1;
            input = rest;
            match std::str::from_utf8(self.pending.get(..self.len).unwrap_or_default()) {
                Ok(_) => self.len = 0,
                Err(e) if e.error_len().is_some() => return Err(WsError::InvalidUtf8),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(WsError::InvalidUtf8),
            Err(e) => {
                // Valid so far, cut inside a code point: keep the tail (1-3 bytes).
                let tail = input.get(e.valid_up_to()..).unwrap_or_default();
                self.pending
                    .get_mut(..tail.len())
                    .ok_or(WsError::InvalidUtf8)?
                    .copy_from_slice(tail);
                self.len = tail.len();
                Ok(())
            }
        }
    }

    /// End of message: a code point still open is invalid.
    fn finish(&mut self) -> Result<(), WsError> {
        let open = self.len != 0;
        self.len = 0;
        if open {
            Err(WsError::InvalidUtf8)
        } else {
            Ok(())
        }
    }
}

/// The kind of data message being received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsgKind {
    Text,
    Binary,
}

/// A frame whose header has been decoded and checked but whose payload may still be arriving.
/// Its header stays at the front of the buffer until the whole frame is consumed.
#[derive(Clone, Copy, Debug)]
struct Pending {
    opcode: OpCode,
    fin: bool,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
    /// Payload bytes already unmasked in place (and UTF-8-checked for text).
    unmasked: usize,
    /// Text payload: validate as it arrives.
    utf8: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Open,
    /// A close frame was returned; nothing more is read.
    Closed,
    /// An error was returned; it is returned again on every call.
    Failed(WsError),
}

/// Reassembles messages from frames: validates masking, opcodes, fragmentation, control
/// frame rules, UTF-8 (incrementally, failing fast) and the message size limit.
///
/// The read buffer belongs to the assembler between calls: payload bytes of a frame still
/// arriving are unmasked in place at the front of it, so the caller may only append to it.
#[derive(Debug)]
pub struct Assembler {
    max_message: usize,
    state: State,
    /// The frame currently at the front of the buffer, once its header is complete.
    pending: Option<Pending>,
    /// The fragmented data message in progress (or the single-frame one being received).
    message: Option<MsgKind>,
    /// Payload of the earlier fragments of the message in progress.
    fragments: BytesMut,
    utf8: Utf8Carry,
}

impl Assembler {
    /// `max_message`: the largest message payload accepted (after reassembly), else 1009.
    pub fn new(max_message: usize) -> Self {
        Assembler {
            max_message,
            state: State::Open,
            pending: None,
            message: None,
            fragments: BytesMut::new(),
            utf8: Utf8Carry::default(),
        }
    }

    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// True while a data message has started (its first frame header was seen) and its final
    /// frame has not been fully received.
    pub fn in_message(&self) -> bool {
        self.message.is_some()
    }

    /// True once a close frame has been returned.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Bytes held for the fragmented message in progress (for memory accounting).
    pub fn buffered(&self) -> usize {
        self.fragments.len()
    }

    /// Consume bytes from the front of `buf` and return the next complete event, if any.
    ///
    /// `Ok(None)` means more bytes are needed (or the connection is closed). Complete frames
    /// are consumed; an incomplete frame stays in `buf`, its payload unmasked so far.
    pub fn next_event(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        match &self.state {
            State::Open => {}
            State::Closed => return Ok(None),
            State::Failed(e) => return Err(e.clone()),
        }
        let result = self.step(buf);
        if let Err(e) = &result {
            self.state = State::Failed(e.clone());
        }
        result
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, WsError> {
        // Loop because a non-final fragment completes a frame but not an event.
        loop {
            let mut frame = match self.pending {
                Some(p) => p,
                None => match decode_header(buf)? {
                    Some((header, header_len)) => self.begin_frame(header, header_len)?,
                    None => return Ok(None),
                },
            };
            let available = buf
                .len()
                .saturating_sub(frame.header_len)
                .min(frame.payload_len);
            if available > frame.unmasked {
                let start = frame.header_len + frame.unmasked;
                let end = frame.header_len + available;
                if let Some(fresh) = buf.get_mut(start..end) {
                    apply_mask_at(fresh, frame.mask, frame.unmasked);
                    if frame.utf8 {
                        self.utf8.feed(fresh)?;
                    }
                }
                frame.unmasked = available;
            }
            if available < frame.payload_len {
                self.pending = Some(frame);
                return Ok(None);
            }
            self.pending = None;
            if let Some(event) = self.finish_frame(frame, buf)? {
                return Ok(Some(event));
            }
        }
    }

    /// Check a new frame header against the connection's state.
    fn begin_frame(&mut self, header: FrameHeader, header_len: usize) -> Result<Pending, WsError> {
        let mask = header
            .mask
            .ok_or(WsError::Protocol("unmasked client frame"))?;
        let payload_len = usize::try_from(header.payload_len).map_err(|_| WsError::TooBig)?;
        let mut utf8 = false;
        match header.opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {}
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(WsError::Protocol("new message inside a fragmented one"));
                }
                if payload_len > self.max_message {
                    return Err(WsError::TooBig);
                }
                let kind = if header.opcode == OpCode::Text {
                    MsgKind::Text
                } else {
                    MsgKind::Binary
                };
                self.message = Some(kind);
                self.utf8 = Utf8Carry::default();
                utf8 = kind == MsgKind::Text;
            }
            OpCode::Continue => {
                let kind = self
                    .message
                    .ok_or(WsError::Protocol("continuation frame without a message"))?;
                let total = self.fragments.len().checked_add(payload_len);
                if total.is_none_or(|t| t > self.max_message) {
                    return Err(WsError::TooBig);
                }
                utf8 = kind == MsgKind::Text;
            }
        }
        Ok(Pending {
            opcode: header.opcode,
            fin: header.fin,
            mask,
            header_len,
            payload_len,
            unmasked: 0,
            utf8,
        })
    }

    /// The whole frame is in `buf` and unmasked: consume it and produce its event, if any.
    fn finish_frame(
        &mut self,
        frame: Pending,
        buf: &mut BytesMut,
    ) -> Result<Option<Event>, WsError> {
        let total = frame.header_len + frame.payload_len;
        if buf.len() < total {
            // Unreachable unless the caller shrank the buffer; never split past its end.
            return Err(WsError::Protocol("read buffer changed under the assembler"));
        }
        let standalone = frame.opcode != OpCode::Continue && frame.fin;
        if frame.opcode.is_control() || standalone {
            // Zero-copy: the event shares the read buffer's allocation.
            let mut bytes = buf.split_to(total);
            bytes.advance(frame.header_len);
            let payload = bytes.freeze();
            return match frame.opcode {
                OpCode::Ping => Ok(Some(Event::Ping(payload))),
                OpCode::Pong => Ok(Some(Event::Pong(payload))),
                OpCode::Close => {
                    let event = parse_close(payload)?;
                    self.state = State::Closed;
                    Ok(Some(event))
                }
                OpCode::Text => {
                    self.utf8.finish()?;
                    self.message = None;
                    Ok(Some(Event::Text(payload)))
                }
                OpCode::Binary | OpCode::Continue => {
                    self.message = None;
                    Ok(Some(Event::Binary(payload)))
                }
            };
        }
        // A fragment: copy its payload aside (the limit was checked at its header).
        let payload = buf
            .get(frame.header_len..total)
            .ok_or(WsError::Protocol("read buffer changed under the assembler"))?;
        self.fragments.extend_from_slice(payload);
        buf.advance(total);
        if !frame.fin {
            return Ok(None);
        }
        let kind = self.message.take();
        let data = std::mem::take(&mut self.fragments).freeze();
        match kind {
            Some(MsgKind::Text) => {
                self.utf8.finish()?;
                Ok(Some(Event::Text(data)))
            }
            Some(MsgKind::Binary) => Ok(Some(Event::Binary(data))),
            None => Err(WsError::Protocol("continuation frame without a message")),
        }
    }
}

/// Close payload: empty, or a valid code followed by a UTF-8 reason.
fn parse_close(payload: Bytes) -> Result<Event, WsError> {
    let Some(code) = array_at::<2>(&payload, 0).map(u16::from_be_bytes) else {
        if payload.is_empty() {
            return Ok(Event::Close {
                code: None,
                reason: Bytes::new(),
            });
        }
        return Err(WsError::Protocol("close payload of one byte"));
    };
    if !is_valid_close_code(code) {
        return Err(WsError::Protocol("invalid close code"));
    }
    let reason = payload.slice(2..);
    if std::str::from_utf8(&reason).is_err() {
        return Err(WsError::InvalidUtf8);
    }
    Ok(Event::Close {
        code: Some(code),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn masked(op: OpCode, payload: &[u8], fin: bool) -> Vec<u8> {
        encode_masked(op, payload, MASK, fin)
    }

    fn hdr(fin: bool, opcode: OpCode, mask: Option<[u8; 4]>, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            opcode,
            mask,
            payload_len: len,
        }
    }

    /// Feed `input` whole and collect events until `Ok(None)` or an error.
    fn run(max: usize, input: &[u8]) -> (Vec<Event>, Option<WsError>, usize) {
        let mut asm = Assembler::new(max);
        let mut buf = BytesMut::from(input);
        let mut events = Vec::new();
        loop {
            match asm.next_event(&mut buf) {
                Ok(Some(e)) => events.push(e),
                Ok(None) => return (events, None, buf.len()),
                Err(e) => return (events, Some(e), buf.len()),
            }
        }
    }

    /// Feed `input` in chunks of `chunk` bytes, draining events after each chunk.
    fn run_chunked(max: usize, input: &[u8], chunk: usize) -> (Vec<Event>, Option<WsError>) {
        let mut asm = Assembler::new(max);
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                match asm.next_event(&mut buf) {
                    Ok(Some(e)) => events.push(e),
                    Ok(None) => break,
                    Err(e) => return (events, Some(e)),
                }
            }
        }
        (events, None)
    }

    fn text(s: &str) -> Event {
        Event::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn decode_header_complete() {
        let m = Some(MASK);
        let mut len16 = vec![0x82, 0xfe, 0x01, 0x00];
        len16.extend_from_slice(&MASK);
        let mut len64 = vec![0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0];
        let mut len64_masked = vec![0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0];
        len64_masked.extend_from_slice(&MASK);
        let mut small_masked = vec![0x81, 0x85];
        small_masked.extend_from_slice(&MASK);
        let cases: Vec<(Vec<u8>, FrameHeader, usize)> = vec![
            (vec![0x81, 0x05], hdr(true, OpCode::Text, None, 5), 2),
            (small_masked, hdr(true, OpCode::Text, m, 5), 6),
            (vec![0x02, 0x00], hdr(false, OpCode::Binary, None, 0), 2),
            (vec![0x00, 0x7d], hdr(false, OpCode::Continue, None, 125), 2),
            (vec![0x88, 0x00], hdr(true, OpCode::Close, None, 0), 2),
            (vec![0x89, 0x7d], hdr(true, OpCode::Ping, None, 125), 2),
            (vec![0x8a, 0x01], hdr(true, OpCode::Pong, None, 1), 2),
            (len16, hdr(true, OpCode::Binary, m, 256), 8),
            (len64.clone(), hdr(true, OpCode::Text, None, 65536), 10),
            (len64_masked, hdr(true, OpCode::Text, m, 1 << 32), 14),
            // Non-minimal encodings are accepted.
            (
                vec![0x81, 0x7e, 0x00, 0x05],
                hdr(true, OpCode::Text, None, 5),
                4,
            ),
        ];
        for (bytes, want, n) in &cases {
            assert_eq!(decode_header(bytes), Ok(Some((*want, *n))), "{bytes:02x?}");
            // Trailing payload bytes do not change the result.
            let mut longer = bytes.clone();
            longer.extend_from_slice(b"payload");
            assert_eq!(decode_header(&longer), Ok(Some((*want, *n))));
            // Every strict prefix is incomplete.
            for cut in 0..bytes.len() {
                assert_eq!(
                    decode_header(&bytes[..cut]),
                    Ok(None),
                    "{bytes:02x?} cut {cut}"
                );
            }
        }
        len64[2] = 0x7f;
        assert_eq!(
            decode_header(&len64),
            Ok(Some((
                hdr(true, OpCode::Text, None, 0x7f00_0000_0001_0000),
                10
            )))
        );
    }

    #[test]
    fn decode_header_errors() {
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0xc1, 0x00], "reserved bits set without an extension"),
            (vec![0xa1, 0x00], "reserved bits set without an extension"),
            (vec![0x91, 0x00], "reserved bits set without an extension"),
            (vec![0x09, 0x00], "fragmented control frame"),
            (vec![0x08, 0x00], "fragmented control frame"),
            (vec![0x0a, 0x80], "fragmented control frame"),
            (vec![0x89, 0x7e], "control frame payload over 125 bytes"),
            (vec![0x88, 0xff], "control frame payload over 125 bytes"),
            (
                vec![0x81, 0x7f, 0x80],
                "64-bit payload length with the MSB set",
            ),
            (
                vec![0x82, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0],
                "64-bit payload length with the MSB set",
            ),
        ];
        for op in [3u8, 4, 5, 6, 7, 11, 12, 13, 14, 15] {
            cases.push((vec![0x80 | op, 0x80], "reserved opcode"));
            cases.push((vec![op, 0x00], "reserved opcode"));
        }
        for (bytes, msg) in cases {
            let got = decode_header(&bytes);
            assert_eq!(got, Err(WsError::Protocol(msg)), "{bytes:02x?}");
            assert_eq!(got.map_err(|e| e.close_code()), Err(1002));
        }
    }

    #[test]
    fn mask_matches_naive_at_every_length_and_offset() {
        let data: Vec<u8> = (0..70u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..data.len() {
            let mut fast = data[..len].to_vec();
            apply_mask(&mut fast, MASK);
            let naive: Vec<u8> = data[..len]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ MASK[i % 4])
                .collect();
            assert_eq!(fast, naive, "len {len}");
            // Piecewise unmasking with an offset equals one pass.
            for split in 0..=len {
                let mut pieces = data[..len].to_vec();
                let (a, b) = pieces.split_at_mut(split);
                apply_mask_at(a, MASK, 0);
                apply_mask_at(b, MASK, split);
                assert_eq!(pieces, naive, "len {len} split {split}");
            }
            apply_mask(&mut fast, MASK);
            assert_eq!(fast, &data[..len]);
        }
    }

    #[test]
    fn encode_frame_headers() {
        for (len, head) in [
            (0usize, vec![0x81, 0x00]),
            (125, vec![0x81, 0x7d]),
            (126, vec![0x81, 0x7e, 0x00, 0x7e]),
            (65535, vec![0x81, 0x7e, 0xff, 0xff]),
            (65536, vec![0x81, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let payload = vec![b'x'; len];
            let frame = encode_text(&payload);
            assert_eq!(frame.len(), head.len() + len);
            assert_eq!(&frame[..head.len()], &head[..], "len {len}");
            assert_eq!(&frame[head.len()..], &payload[..]);
            assert_eq!(header_len(len, false), head.len());
            let mut into = BytesMut::from(&b"prefix"[..]);
            encode_frame_into(OpCode::Text, &payload, &mut into);
            assert_eq!(&into[6..], &frame[..]);
        }
        // The heartbeat frame from the spec: 0x81 0x02 5b 5d.
        assert_eq!(&encode_text(b"[]")[..], &[0x81, 0x02, 0x5b, 0x5d]);
        assert_eq!(
            &encode_frame(OpCode::Pong, b"hi")[..],
            &[0x8a, 2, b'h', b'i']
        );
        assert_eq!(&encode_close(1000, "")[..], &[0x88, 0x02, 0x03, 0xe8]);
        assert_eq!(&encode_close(1001, "bye")[..], b"\x88\x05\x03\xe9bye");
        assert_eq!(&encode_close_reply(None)[..], &[0x88, 0x00]);
        assert_eq!(
            &encode_close_reply(Some(4000))[..],
            &[0x88, 0x02, 0x0f, 0xa0]
        );
        // Reasons are cut at 123 bytes, on a char boundary.
        let long = "é".repeat(100);
        let frame = encode_close(1000, &long);
        assert_eq!(frame[1] as usize, 2 + 122);
        assert!(std::str::from_utf8(&frame[4..]).is_ok());
        assert_eq!(encode_close(1000, &"a".repeat(200))[1] as usize, 125);
    }

    #[test]
    fn encode_masked_round_trips_through_the_assembler() {
        for len in [0usize, 1, 7, 8, 9, 125, 126, 65535, 65536, 100_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let wire = masked(OpCode::Binary, &payload, true);
            assert_eq!(wire.len(), header_len(len, true) + len);
            let (events, err, rest) = run(1 << 20, &wire);
            assert_eq!(err, None);
            assert_eq!(rest, 0);
            assert_eq!(
                events,
                vec![Event::Binary(Bytes::from(payload))],
                "len {len}"
            );
        }
    }

    #[test]
    fn assembler_single_frames_and_zero_copy() {
        let mut wire = masked(OpCode::Text, b"Hello", true);
        let first_len = wire.len();
        wire.extend(masked(OpCode::Binary, &[1, 2, 3], true));
        wire.extend(masked(OpCode::Ping, b"p", true));
        wire.extend(masked(OpCode::Pong, b"", true));
        wire.extend(masked(OpCode::Text, b"", true));
        wire.extend(&masked(OpCode::Text, b"partial", true)[..8]);
        let mut buf = BytesMut::from(&wire[..]);
        let base = buf.as_ptr();
        let mut asm = Assembler::new(1024);
        let Ok(Some(Event::Text(hello))) = asm.next_event(&mut buf) else {
            panic!("expected text");
        };
        assert_eq!(&hello[..], b"Hello");
        // The payload is a view of the read buffer, not a copy.
        assert_eq!(hello.as_ptr(), base.wrapping_add(6));
        assert_eq!(buf.len(), wire.len() - first_len);
        let rest: Vec<_> = std::iter::from_fn(|| asm.next_event(&mut buf).ok().flatten()).collect();
        assert_eq!(
            rest,
            vec![
                Event::Binary(Bytes::from_static(&[1, 2, 3])),
                Event::Ping(Bytes::from_static(b"p")),
                Event::Pong(Bytes::new()),
                text(""),
            ]
        );
        // The incomplete frame stays in the buffer, header included.
        assert_eq!(buf.len(), 8);
        assert!(asm.in_message());
        // Its two arrived payload bytes are already unmasked in place.
        assert_eq!(&buf[6..], b"pa");
    }

    #[test]
    fn assembler_every_split_point_and_chunk_size() {
        let mut wire = masked(OpCode::Text, "κόσμε".as_bytes(), false);
        wire.extend(masked(OpCode::Ping, b"ping", true));
        wire.extend(masked(OpCode::Continue, " mundo".as_bytes(), true));
        wire.extend(masked(OpCode::Binary, &[0u8; 300], true));
        wire.extend(masked(OpCode::Close, b"\x03\xe8bye", true));
        let want = vec![
            Event::Ping(Bytes::from_static(b"ping")),
            text("κόσμε mundo"),
            Event::Binary(Bytes::from(vec![0u8; 300])),
            Event::Close {
                code: Some(1000),
                reason: Bytes::from_static(b"bye"),
            },
        ];
        for chunk in [1, 2, 3, 5, 7, 13, 64, wire.len()] {
            assert_eq!(
                run_chunked(1024, &wire, chunk),
                (want.clone(), None),
                "chunk {chunk}"
            );
        }
        for split in 0..=wire.len() {
            let mut asm = Assembler::new(1024);
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Some(e) = asm.next_event(&mut buf).unwrap_or(None) {
                got.push(e);
            }
            buf.extend_from_slice(&wire[split..]);
            while let Some(e) = asm.next_event(&mut buf).unwrap_or(None) {
                got.push(e);
            }
            assert_eq!(got, want, "split {split}");
            assert!(buf.is_empty());
            assert!(asm.is_closed());
        }
    }

    #[test]
    fn assembler_protocol_errors() {
        let unmasked = encode_text(b"hi").to_vec();
        let cont = masked(OpCode::Continue, b"x", true);
        let mut text_then_text = masked(OpCode::Text, b"a", false);
        text_then_text.extend(masked(OpCode::Text, b"b", true));
        let mut text_then_binary = masked(OpCode::Text, b"a", false);
        text_then_binary.extend(masked(OpCode::Binary, b"b", true));
        let mut after_final = masked(OpCode::Text, b"a", true);
        after_final.extend(masked(OpCode::Continue, b"b", true));
        let cases: Vec<(&str, Vec<u8>, usize, WsError)> = vec![
            (
                "unmasked",
                unmasked,
                0,
                WsError::Protocol("unmasked client frame"),
            ),
            (
                "continuation first",
                cont,
                0,
                WsError::Protocol("continuation frame without a message"),
            ),
            (
                "text inside text",
                text_then_text,
                0,
                WsError::Protocol("new message inside a fragmented one"),
            ),
            (
                "binary inside text",
                text_then_binary,
                0,
                WsError::Protocol("new message inside a fragmented one"),
            ),
            (
                "continuation after final",
                after_final,
                1,
                WsError::Protocol("continuation frame without a message"),
            ),
            (
                "rsv",
                vec![0xc1, 0x80],
                0,
                WsError::Protocol("reserved bits set without an extension"),
            ),
            (
                "fragmented ping",
                masked(OpCode::Ping, b"", false),
                0,
                WsError::Protocol("fragmented control frame"),
            ),
            (
                "close 1 byte",
                masked(OpCode::Close, b"\x03", true),
                0,
                WsError::Protocol("close payload of one byte"),
            ),
            (
                "close bad reason",
                masked(OpCode::Close, b"\x03\xe8\xce\xba\xed\xa0\x80", true),
                0,
                WsError::InvalidUtf8,
            ),
        ];
        for (name, wire, n_events, err) in cases {
            let (events, got, _) = run(1024, &wire);
            assert_eq!(events.len(), n_events, "{name}");
            assert_eq!(got.as_ref(), Some(&err), "{name}");
            // Errors are sticky.
            let mut asm = Assembler::new(1024);
            let mut buf = BytesMut::from(&wire[..]);
            while let Ok(Some(_)) = asm.next_event(&mut buf) {}
            assert_eq!(asm.next_event(&mut buf), Err(err.clone()), "{name}");
            assert_eq!(asm.next_event(&mut buf), Err(err), "{name}");
        }
    }

    #[test]
    fn close_codes() {
        let valid = [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ];
        let invalid = [
            0u16, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000,
            65535,
        ];
        for code in valid {
            let wire = masked(OpCode::Close, &code.to_be_bytes(), true);
            let want = Event::Close {
                code: Some(code),
                reason: Bytes::new(),
            };
            assert_eq!(run(16, &wire), (vec![want], None, 0), "{code}");
        }
        for code in invalid {
            let wire = masked(OpCode::Close, &code.to_be_bytes(), true);
            let (_, err, _) = run(16, &wire);
            assert_eq!(err.map(|e| e.close_code()), Some(1002), "{code}");
        }
        let empty = masked(OpCode::Close, b"", true);
        let want = Event::Close {
            code: None,
            reason: Bytes::new(),
        };
        assert_eq!(run(16, &empty), (vec![want], None, 0));
        // A 123-byte reason (125-byte payload) is fine.
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend(std::iter::repeat_n(b'*', 123));
        let (events, err, _) = run(16, &masked(OpCode::Close, &payload, true));
        assert_eq!((events.len(), err), (1, None));
    }

    #[test]
    fn nothing_is_read_after_close() {
        let mut wire = masked(OpCode::Close, b"", true);
        let rest = masked(OpCode::Text, b"late", true);
        wire.extend(&rest);
        wire.extend(b"\xff\xff garbage");
        let mut asm = Assembler::new(64);
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            asm.next_event(&mut buf),
            Ok(Some(Event::Close { code: None, .. }))
        ));
        assert_eq!(asm.next_event(&mut buf), Ok(None));
        assert_eq!(buf.len(), rest.len() + 10);
        assert!(asm.is_closed());
    }

    #[test]
    fn control_frames_between_fragments() {
        let mut wire = masked(OpCode::Binary, b"ab", false);
        wire.extend(masked(OpCode::Ping, b"1", true));
        wire.extend(masked(OpCode::Continue, b"", false));
        wire.extend(masked(OpCode::Pong, b"2", true));
        wire.extend(masked(OpCode::Continue, b"cd", false));
        wire.extend(masked(OpCode::Ping, b"3", true));
        wire.extend(masked(OpCode::Continue, b"e", true));
        wire.extend(masked(OpCode::Text, b"next", true));
        let (events, err, rest) = run(64, &wire);
        assert_eq!(err, None);
        assert_eq!(rest, 0);
        assert_eq!(
            events,
            vec![
                Event::Ping(Bytes::from_static(b"1")),
                Event::Pong(Bytes::from_static(b"2")),
                Event::Ping(Bytes::from_static(b"3")),
                Event::Binary(Bytes::from_static(b"abcde")),
                text("next"),
            ]
        );
        // in_message tracks the fragmented message.
        let mut asm = Assembler::new(64);
        let mut buf = BytesMut::from(&masked(OpCode::Text, b"a", false)[..]);
        assert_eq!(asm.next_event(&mut buf), Ok(None));
        assert!(asm.in_message());
        assert_eq!(asm.buffered(), 1);
        buf.extend_from_slice(&masked(OpCode::Continue, b"b", true));
        assert_eq!(asm.next_event(&mut buf), Ok(Some(text("ab"))));
        assert!(!asm.in_message());
        assert_eq!(asm.buffered(), 0);
    }

    #[test]
    fn utf8_split_across_fragments() {
        // Valid text split at every byte, including inside multi-byte code points.
        let s = "κόσμε 𝄞 ü€";
        let bytes = s.as_bytes();
        for cut in 0..=bytes.len() {
            let mut wire = masked(OpCode::Text, &bytes[..cut], false);
            wire.extend(masked(OpCode::Ping, b"", true));
            wire.extend(masked(OpCode::Continue, &bytes[cut..], true));
            let (events, err, _) = run(64, &wire);
            assert_eq!(err, None, "cut {cut}");
            assert_eq!(events.last(), Some(&text(s)), "cut {cut}");
        }
        // Three fragments splitting one 4-byte code point 1+2+1.
        let clef = "𝄞".as_bytes();
        let mut wire = masked(OpCode::Text, &clef[..1], false);
        wire.extend(masked(OpCode::Continue, &clef[1..3], false));
        wire.extend(masked(OpCode::Continue, &clef[3..], true));
        assert_eq!(run(64, &wire), (vec![text("𝄞")], None, 0));
    }

    #[test]
    fn utf8_errors_fail_fast() {
        let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
            // Invalid in the first fragment: fails before the second arrives.
            ("bad first", vec![b"ok\xff".to_vec()]),
            // Surrogate (ED A0 80) split across fragments: fails at its second byte.
            (
                "surrogate split",
                vec![b"\xce\xba\xed".to_vec(), b"\xa0\x80edited".to_vec()],
            ),
            // Code point above U+10FFFF split: F4 90 is already invalid.
            (
                "above max",
                vec![b"\xf4".to_vec(), b"\x90\x80\x80".to_vec()],
            ),
            ("overlong", vec![b"\xc0".to_vec(), b"\xaf".to_vec()]),
            ("lone continuation", vec![b"a".to_vec(), b"\x80".to_vec()]),
        ];
        for (name, fragments) in cases {
            let mut wire = Vec::new();
            for (i, f) in fragments.iter().enumerate() {
                let op = if i == 0 {
                    OpCode::Text
                } else {
                    OpCode::Continue
                };
                wire.extend(masked(op, f, false));
            }
            // No final fragment is ever sent: the error must come from what is there.
            let (_, err, _) = run(64, &wire);
            assert_eq!(err, Some(WsError::InvalidUtf8), "{name}");
        }
        // Fails inside a single frame whose tail has not arrived (Autobahn 6.4.3/6.4.4).
        let mut payload = "κόσμε".as_bytes().to_vec();
        payload.extend(b"\xf4\x90\x80\x80");
        payload.extend(b"-edited-".repeat(50));
        let wire = masked(OpCode::Text, &payload, true);
        let (_, err, _) = run(1024, &wire[..8 + 12]);
        assert_eq!(err, Some(WsError::InvalidUtf8));
        // An incomplete code point at the end of the message.
        let mut wire = masked(OpCode::Text, b"a\xe2\x82", false);
        assert_eq!(run(64, &wire).1, None);
        wire.extend(masked(OpCode::Continue, b"", true));
        assert_eq!(run(64, &wire).1, Some(WsError::InvalidUtf8));
        assert_eq!(
            run(64, &masked(OpCode::Text, b"\xe2\x82", true)).1,
            Some(WsError::InvalidUtf8)
        );
        assert_eq!(WsError::InvalidUtf8.close_code(), 1007);
        // Binary messages are never checked.
        assert_eq!(run(64, &masked(OpCode::Binary, b"\xff", true)).1, None);
    }

    #[test]
    fn size_limit_is_checked_at_the_header() {
        // Only the header of a too-big frame: TooBig without any payload buffered.
        let wire = masked(OpCode::Binary, &[0u8; 200], true);
        let (_, err, _) = run(100, &wire[..8]);
        assert_eq!(err, Some(WsError::TooBig));
        assert_eq!(WsError::TooBig.close_code(), 1009);
        // Exactly the limit is fine.
        assert_eq!(run(200, &wire).1, None);
        // Fragments that add up past the limit fail at the header of the one that overflows.
        let mut wire = masked(OpCode::Text, &[b'a'; 60], false);
        wire.extend(masked(OpCode::Continue, &[b'b'; 40], false));
        let overflow = masked(OpCode::Continue, &[b'c'; 1], true);
        wire.extend(&overflow[..6]);
        assert_eq!(run(100, &wire).1, Some(WsError::TooBig));
        // Control frames do not count towards the limit.
        let mut wire = masked(OpCode::Text, &[b'a'; 10], false);
        wire.extend(masked(OpCode::Ping, &[0; 100], true));
        wire.extend(masked(OpCode::Continue, &[b'a'; 10], true));
        assert_eq!(run(20, &wire).0.len(), 2);
        // A 64-bit length the machine cannot even address.
        let huge = [
            0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
        ];
        assert_eq!(run(100, &huge).1, Some(WsError::TooBig));
    }

    /// An in-memory stream for tungstenite: reads from `input`, writes to `output`.
    struct Duplex {
        input: std::io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl std::io::Read for Duplex {
        fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(b)
        }
    }

    impl std::io::Write for Duplex {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.output.write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn tungstenite_client(input: Vec<u8>) -> tungstenite::WebSocket<Duplex> {
        let stream = Duplex {
            input: std::io::Cursor::new(input),
            output: Vec::new(),
        };
        tungstenite::WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None)
    }

    #[test]
    fn tungstenite_client_reads_our_frames() {
        use tungstenite::Message;
        let big = "x".repeat(70_000);
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode_text(b"[]"));
        wire.extend_from_slice(&encode_text(big.as_bytes()));
        wire.extend_from_slice(&encode_frame(OpCode::Binary, &[0u8; 300]));
        wire.extend_from_slice(&encode_frame(OpCode::Ping, b"hb"));
        wire.extend_from_slice(&encode_close(1000, "done"));
        let mut ws = tungstenite_client(wire);
        assert_eq!(ws.read().ok(), Some(Message::text("[]")));
        assert_eq!(ws.read().ok(), Some(Message::text(big)));
        assert_eq!(ws.read().ok(), Some(Message::binary(vec![0u8; 300])));
        assert_eq!(
            ws.read().ok(),
            Some(Message::Ping(Bytes::from_static(b"hb")))
        );
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1000);
                assert_eq!(frame.reason.as_str(), "done");
            }
            other => panic!("expected close, got {other:?}"),
        }
    }

    #[test]
    fn assembler_reads_tungstenite_client_frames() {
        use tungstenite::Message;
        let big = "é".repeat(40_000);
        let mut ws = tungstenite_client(Vec::new());
        for m in [
            Message::text("hello"),
            Message::text(big.clone()),
            Message::binary(vec![7u8; 126]),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Pong(Bytes::new()),
        ] {
            assert!(ws.send(m).is_ok());
        }
        let frame = tungstenite::protocol::CloseFrame {
            code: 4001u16.into(),
            reason: "bye".into(),
        };
        assert!(ws.close(Some(frame)).is_ok());
        assert!(ws.flush().is_ok());
        let wire = ws.get_ref().output.clone();
        let want = vec![
            text("hello"),
            text(&big),
            Event::Binary(Bytes::from(vec![7u8; 126])),
            Event::Ping(Bytes::from_static(b"p")),
            Event::Pong(Bytes::new()),
            Event::Close {
                code: Some(4001),
                reason: Bytes::from_static(b"bye"),
            },
        ];
        assert_eq!(run(1 << 20, &wire), (want.clone(), None, 0));
        assert_eq!(run_chunked(1 << 20, &wire, 1000), (want, None));
    }
}
