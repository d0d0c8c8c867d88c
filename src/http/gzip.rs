//! Decoding the gzip format (RFC 1952) as its bytes arrive, with no I/O.
//!
//! In scope: the member header (its flags `FEXTRA`, `FNAME`, `FCOMMENT`,
//! `FHCRC` and the fields they announce, skipped but checked), the deflate
//! data between (inflated by `miniz_oxide`), and the trailer, whose CRC-32
//! and length are checked against what was inflated. Several members in a
//! row decode as one stream, as gzip(1) does.
//! Out of scope: reading the body ([`super::decoded`] does), other codings.
//!
//! A push API in the manner of csv-core: [`Gunzip::decode`] takes any slice
//! of input and room for output, says how much of each it used, and answers
//! [`Decoded::Partial`] when it needs more input. The state it keeps is
//! the inflater's 32 KiB window and a few counters, whatever the length of
//! the stream or of the header's name and comment, which are not kept.
//!
//! ```text
//!   Header ─ Fixed ─┬─ ExtraLength ─ Extra ─┐
//!                   ├───────────────────────┴─ Name ─ Comment ─ HeaderCrc ─┐
//!                   └── (each only when its flag is set) ─────────────────┤
//!   Deflate ◄──────────────────────────────────────────────────────────────┘
//!   Trailer (CRC-32, ISIZE) ─ Between ─┬─ end of input: done
//!                                      └─ 1f 8b: the next member's Header
//! ```

use std::fmt;

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::util::crc32::Crc32;

/// The two bytes every member starts with.
const MAGIC: [u8; 2] = [0x1f, 0x8b];
/// `CM`: deflate, the one method RFC 1952 defines.
const METHOD_DEFLATE: u8 = 8;

const FLAG_HCRC: u8 = 1 << 1;
const FLAG_EXTRA: u8 = 1 << 2;
const FLAG_NAME: u8 = 1 << 3;
const FLAG_COMMENT: u8 = 1 << 4;
/// Bits 5 to 7 must be zero: a decoder that met one set could not know
/// which field it announces.
const FLAGS_RESERVED: u8 = 0b1110_0000;

/// What a call to [`Gunzip::decode`] ended on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// Every input byte is used and the stream is not at an end: give more.
    Partial,
    /// The output is full: call again with more room (and the input not
    /// used yet).
    OutputFull,
    /// A member ended with its trailer checked and every input byte is
    /// used. The stream may end here, or another member may follow.
    End,
}

/// Why a gzip stream cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GzipError {
    /// The first two bytes of a member are not `1f 8b`.
    NotGzip,
    /// `CM` names a method other than deflate (8).
    UnknownMethod(u8),
    /// A reserved flag bit is set.
    ReservedFlags(u8),
    /// The header's CRC-16 (`FHCRC`) does not match the header.
    HeaderCrc,
    /// The deflate data is malformed.
    Deflate,
    /// The trailer's CRC-32 does not match the bytes inflated.
    Crc {
        /// What the trailer says.
        expected: u32,
        /// What the inflated bytes give.
        actual: u32,
    },
    /// The trailer's length (modulo 2^32) does not match the bytes inflated.
    Length {
        /// What the trailer says.
        expected: u32,
        /// What was inflated, modulo 2^32.
        actual: u32,
    },
    /// The stream ended inside a member.
    Truncated,
    /// Bytes that do not start a member follow the last one.
    TrailingBytes,
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GzipError::NotGzip => write!(f, "not gzip data (no 1f 8b at the start)"),
            GzipError::UnknownMethod(m) => write!(f, "unknown compression method {m}"),
            GzipError::ReservedFlags(flags) => {
                write!(f, "reserved header flags set ({flags:#04x})")
            }
            GzipError::HeaderCrc => write!(f, "the header's CRC does not match"),
            GzipError::Deflate => write!(f, "malformed deflate data"),
            GzipError::Crc { expected, actual } => write!(
                f,
                "CRC-32 mismatch (the trailer says {expected:08x}, the data gives {actual:08x})"
            ),
            GzipError::Length { expected, actual } => write!(
                f,
                "length mismatch (the trailer says {expected} bytes, {actual} were decoded)"
            ),
            GzipError::Truncated => write!(f, "the gzip data ends early"),
            GzipError::TrailingBytes => write!(f, "bytes that are not gzip after the data"),
        }
    }
}

impl std::error::Error for GzipError {}

/// Where in a member the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The fixed ten bytes: magic, method, flags, time, extra flags, OS.
    Fixed { got: usize },
    /// `XLEN`, two bytes little-endian.
    ExtraLength { got: usize },
    /// The extra field's bytes still to skip.
    Extra { left: u16 },
    /// The zero-terminated file name.
    Name,
    /// The zero-terminated comment.
    Comment,
    /// The header's CRC-16, two bytes.
    HeaderCrc { got: usize },
    /// The deflate data.
    Deflate,
    /// CRC-32 and ISIZE, eight bytes.
    Trailer { got: usize },
    /// After a member's trailer: the end, or another member.
    Between,
}

/// A gzip decoder; see the module documentation.
pub struct Gunzip {
    state: State,
    /// The header's flags, once read.
    flags: u8,
    /// The bytes of a fixed-size field being read (header, `XLEN`, CRC-16,
    /// trailer).
    field: [u8; 10],
    /// The CRC-32 of the header so far, for `FHCRC`.
    header_crc: Crc32,
    /// The CRC-32 of what this member inflated so far.
    crc: Crc32,
    /// What this member inflated so far, modulo 2^32 (ISIZE).
    length: u32,
    inflater: Box<InflateState>,
}

impl Default for Gunzip {
    fn default() -> Self {
        Gunzip::new()
    }
}

impl Gunzip {
    /// A decoder at the start of a stream.
    pub fn new() -> Gunzip {
        Gunzip {
            state: State::Fixed { got: 0 },
            flags: 0,
            field: [0; 10],
            header_crc: Crc32::new(),
            crc: Crc32::new(),
            length: 0,
            inflater: InflateState::new_boxed(DataFormat::Raw),
        }
    }

    /// Decodes what it can of `input` into `output`: returns how the call
    /// ended, the input bytes used and the output bytes written. Input not
    /// used (on [`Decoded::OutputFull`]) is to be given again.
    pub fn decode(
        &mut self,
        input: &[u8],
        output: &mut [u8],
    ) -> Result<(Decoded, usize, usize), GzipError> {
        let mut used = 0;
        let mut written = 0;
        loop {
            if self.state == State::Deflate {
                if written == output.len() {
                    return Ok((Decoded::OutputFull, used, written));
                }
                let result = inflate(
                    &mut self.inflater,
                    &input[used..],
                    &mut output[written..],
                    MZFlush::None,
                );
                let new = &output[written..written + result.bytes_written];
                self.crc.update(new);
                // ISIZE is the length modulo 2^32 (RFC 1952 2.3.1).
                self.length = self.length.wrapping_add(new.len() as u32);
                used += result.bytes_consumed;
                written += result.bytes_written;
                let progressed = result.bytes_consumed > 0 || result.bytes_written > 0;
                match result.status {
                    Ok(MZStatus::StreamEnd) => self.state = State::Trailer { got: 0 },
                    Ok(_) | Err(MZError::Buf) if progressed => {}
                    // No progress: the inflater waits for input it was not
                    // given (it never stops with input left and room).
                    Ok(_) | Err(MZError::Buf) if used == input.len() => {
                        return Ok((Decoded::Partial, used, written))
                    }
                    _ => return Err(GzipError::Deflate),
                }
                continue;
            }
            let Some(&byte) = input.get(used) else {
                let end = match self.state {
                    State::Between => Decoded::End,
                    _ => Decoded::Partial,
                };
                return Ok((end, used, written));
            };
            used += 1;
            self.framing_byte(byte)?;
        }
    }

    /// Checks that the stream may end here: after a member's trailer, or
    /// before any byte (an empty body, which some servers send encoded).
    pub fn finish(&self) -> Result<(), GzipError> {
        match self.state {
            State::Between => Ok(()),
            // Only before the first byte: a later member starts at `got: 1`.
            State::Fixed { got: 0 } => Ok(()),
            _ => Err(GzipError::Truncated),
        }
    }

    /// Whether a member ended and no byte of another has come.
    pub fn is_at_end(&self) -> bool {
        self.state == State::Between
    }

    /// Takes one byte of a header or trailer.
    fn framing_byte(&mut self, byte: u8) -> Result<(), GzipError> {
        if self.state.is_covered_by_header_crc() {
            self.header_crc.update(&[byte]);
        }
        match self.state {
            State::Between => {
                if byte != MAGIC[0] {
                    return Err(GzipError::TrailingBytes);
                }
                self.start_member();
                self.header_crc.update(&[byte]);
                self.field[0] = byte;
                self.state = State::Fixed { got: 1 };
            }
            State::Fixed { got } => {
                self.field[got] = byte;
                let got = got + 1;
                if got == 2 && self.field[..2] != MAGIC {
                    return Err(GzipError::NotGzip);
                }
                if got == 3 && byte != METHOD_DEFLATE {
                    return Err(GzipError::UnknownMethod(byte));
                }
                if got == 4 && byte & FLAGS_RESERVED != 0 {
                    return Err(GzipError::ReservedFlags(byte));
                }
                self.state = match got {
                    10 => {
                        self.flags = self.field[3];
                        self.after(State::Fixed { got })
                    }
                    _ => State::Fixed { got },
                };
            }
            State::ExtraLength { got } => {
                self.field[got] = byte;
                self.state = match got + 1 {
                    2 => match u16::from_le_bytes([self.field[0], self.field[1]]) {
                        0 => self.after(State::Extra { left: 0 }),
                        left => State::Extra { left },
                    },
                    got => State::ExtraLength { got },
                };
            }
            State::Extra { left } => {
                self.state = match left - 1 {
                    0 => self.after(State::Extra { left: 0 }),
                    left => State::Extra { left },
                };
            }
            State::Name | State::Comment => {
                if byte == 0 {
                    self.state = self.after(self.state);
                }
            }
            State::HeaderCrc { got } => {
                self.field[got] = byte;
                if got + 1 == 2 {
                    let expected = u16::from_le_bytes([self.field[0], self.field[1]]);
                    // The low 16 bits of the CRC-32 of the header before it.
                    if expected != (self.header_crc.value() & 0xffff) as u16 {
                        return Err(GzipError::HeaderCrc);
                    }
                    self.state = State::Deflate;
                } else {
                    self.state = State::HeaderCrc { got: got + 1 };
                }
            }
            State::Trailer { got } => {
                self.field[got] = byte;
                if got + 1 < 8 {
                    self.state = State::Trailer { got: got + 1 };
                    return Ok(());
                }
                let word = |at: usize| {
                    u32::from_le_bytes([
                        self.field[at],
                        self.field[at + 1],
                        self.field[at + 2],
                        self.field[at + 3],
                    ])
                };
                let (crc, length) = (word(0), word(4));
                if crc != self.crc.value() {
                    return Err(GzipError::Crc {
                        expected: crc,
                        actual: self.crc.value(),
                    });
                }
                if length != self.length {
                    return Err(GzipError::Length {
                        expected: length,
                        actual: self.length,
                    });
                }
                self.state = State::Between;
            }
            // `decode` hands deflate data to the inflater, never here.
            State::Deflate => {}
        }
        Ok(())
    }

    /// The state after the header field `done`, as the flags say.
    fn after(&self, done: State) -> State {
        let order = [FLAG_EXTRA, FLAG_NAME, FLAG_COMMENT, FLAG_HCRC];
        let position = match done {
            State::Fixed { .. } => 0,
            State::Extra { .. } => 1,
            State::Name => 2,
            State::Comment => 3,
            _ => 4,
        };
        let next = order[position..]
            .iter()
            .find(|&&flag| self.flags & flag != 0);
        match next {
            Some(&FLAG_EXTRA) => State::ExtraLength { got: 0 },
            Some(&FLAG_NAME) => State::Name,
            Some(&FLAG_COMMENT) => State::Comment,
            Some(_) => State::HeaderCrc { got: 0 },
            None => State::Deflate,
        }
    }

    /// Resets the per-member state for the member that starts now.
    fn start_member(&mut self) {
        self.flags = 0;
        self.header_crc = Crc32::new();
        self.crc = Crc32::new();
        self.length = 0;
        self.inflater.reset(DataFormat::Raw);
    }
}

impl State {
    /// Whether this is a part of the header that `FHCRC` covers: all of
    /// it but the CRC-16 itself.
    fn is_covered_by_header_crc(self) -> bool {
        matches!(
            self,
            State::Fixed { .. }
                | State::ExtraLength { .. }
                | State::Extra { .. }
                | State::Name
                | State::Comment
        )
    }
}

/// `pieces` decoded one after another with `room` bytes of output at a
/// time, then the stream checked to be at its end; asserts that each call
/// progresses as it says. For the tests and the fuzz target, which drive
/// the decoder as [`decoded`](super::decoded) does, in any split.
#[doc(hidden)]
pub fn decode_in_pieces(pieces: &[&[u8]], room: usize) -> Result<Vec<u8>, GzipError> {
    let mut gunzip = Gunzip::new();
    let mut out = Vec::new();
    let mut buf = vec![0; room];
    for piece in pieces.iter().chain([&&b""[..]]) {
        let mut rest = *piece;
        loop {
            let (step, used, written) = gunzip.decode(rest, &mut buf)?;
            assert!(used <= rest.len() && written <= room);
            if step == Decoded::Partial || step == Decoded::End {
                assert_eq!(used, rest.len(), "{step:?} with input left");
            }
            out.extend_from_slice(&buf[..written]);
            rest = &rest[used..];
            if step != Decoded::OutputFull && rest.is_empty() && written == 0 {
                break;
            }
        }
    }
    gunzip.finish()?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use miniz_oxide::deflate::compress_to_vec;

    /// A gzip member of `data` with the optional header fields of `flags`.
    pub(crate) fn member(data: &[u8], flags: u8) -> Vec<u8> {
        member_of(&compress_to_vec(data, 6), data, flags)
    }

    /// A gzip member of `deflated`, the deflate data of `data`.
    pub(crate) fn member_of(deflated: &[u8], data: &[u8], flags: u8) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, flags, 1, 2, 3, 4, 0, 3];
        if flags & FLAG_EXTRA != 0 {
            let extra = b"AP\x04\x00abcd";
            out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            out.extend_from_slice(extra);
        }
        if flags & FLAG_NAME != 0 {
            out.extend_from_slice(b"notes.txt\0");
        }
        if flags & FLAG_COMMENT != 0 {
            out.extend_from_slice(b"a comment\0");
        }
        if flags & FLAG_HCRC != 0 {
            let mut crc = Crc32::new();
            crc.update(&out);
            out.extend_from_slice(&((crc.value() & 0xffff) as u16).to_le_bytes());
        }
        out.extend_from_slice(deflated);
        let mut crc = Crc32::new();
        crc.update(data);
        out.extend_from_slice(&crc.value().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    }

    /// Text that compresses, yet not to nothing.
    fn text(len: usize) -> Vec<u8> {
        (0..)
            .map(|i: usize| format!("line {i} of {}\n", i * 7919 % 1000))
            .flat_map(String::into_bytes)
            .take(len)
            .collect()
    }

    #[test]
    fn every_header_field_is_skipped_and_any_split_decodes_the_same() {
        let data = text(3000);
        let all = FLAG_EXTRA | FLAG_NAME | FLAG_COMMENT | FLAG_HCRC;
        for flags in [0, FLAG_NAME, FLAG_EXTRA | FLAG_NAME, all] {
            let gz = member(&data, flags);
            assert_eq!(decode_in_pieces(&[&gz], 1 << 16), Ok(data.clone()));
            for cut in 0..=gz.len() {
                let (a, b) = gz.split_at(cut);
                assert_eq!(
                    decode_in_pieces(&[a, b], 1000),
                    Ok(data.clone()),
                    "cut at {cut}"
                );
            }
        }
        // One byte in and one byte out at a time.
        let gz = member(&data, all);
        let bytes: Vec<&[u8]> = gz.chunks(1).collect();
        assert_eq!(decode_in_pieces(&bytes, 1), Ok(data));
    }

    #[test]
    fn a_stream_cut_anywhere_is_truncated_not_complete() {
        let data = text(2000);
        let gz = member(&data, FLAG_NAME | FLAG_HCRC);
        for cut in 1..gz.len() {
            assert_eq!(
                decode_in_pieces(&[&gz[..cut]], 512),
                Err(GzipError::Truncated),
                "{cut}"
            );
        }
        // No byte at all is an empty body, not a cut one.
        assert_eq!(decode_in_pieces(&[], 512), Ok(Vec::new()));
    }

    #[test]
    fn a_wrong_crc_or_length_in_the_trailer_is_an_error() {
        let data = text(5000);
        let gz = member(&data, 0);
        let n = gz.len();
        let mut bad_crc = gz.clone();
        bad_crc[n - 8] ^= 1;
        assert!(matches!(
            decode_in_pieces(&[&bad_crc], 4096),
            Err(GzipError::Crc { .. })
        ));
        let mut bad_length = gz.clone();
        bad_length[n - 1] ^= 0x80;
        assert!(matches!(
            decode_in_pieces(&[&bad_length], 4096),
            Err(GzipError::Length { .. })
        ));
        let mut bad_header = member(&data, FLAG_HCRC);
        bad_header[10] ^= 0xff;
        assert_eq!(
            decode_in_pieces(&[&bad_header], 4096),
            Err(GzipError::HeaderCrc)
        );
    }

    #[test]
    fn malformed_headers_and_data_are_named() {
        let gz = member(b"hello", 0);
        let with = |at: usize, byte: u8| {
            let mut bytes = gz.clone();
            bytes[at] = byte;
            decode_in_pieces(&[&bytes], 64)
        };
        assert_eq!(with(1, 0x8c), Err(GzipError::NotGzip));
        assert_eq!(with(2, 7), Err(GzipError::UnknownMethod(7)));
        assert_eq!(with(3, 0x20), Err(GzipError::ReservedFlags(0x20)));
        // A deflate block type of 3 is reserved.
        assert_eq!(with(10, 0x07), Err(GzipError::Deflate));
        assert_eq!(
            decode_in_pieces(&[b"<html>not gzip"], 64),
            Err(GzipError::NotGzip)
        );
    }

    #[test]
    fn members_in_a_row_decode_as_one_stream_and_garbage_after_is_refused() {
        let (a, b) = (text(4000), b"second member".to_vec());
        let mut two = member(&a, FLAG_NAME);
        two.extend_from_slice(&member(&b, 0));
        let mut both = a.clone();
        both.extend_from_slice(&b);
        assert_eq!(decode_in_pieces(&[&two], 300), Ok(both));
        let mut trailing = member(&a, 0);
        trailing.extend_from_slice(b"\n");
        assert_eq!(
            decode_in_pieces(&[&trailing], 300),
            Err(GzipError::TrailingBytes)
        );
    }
}
