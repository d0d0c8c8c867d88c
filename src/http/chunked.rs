//! The chunked transfer coding (RFC 9112 section 7.1), decoded in place.
//!
//! [`ChunkedDecoder`] is fed whatever slice of the connection buffer is at
//! hand and says how much of it it consumed and which range of it is body
//! data, so the body is handed on without being copied. Chunk extensions are
//! skipped, trailers read and dropped. Sizes, extensions and trailers are
//! bounded. It does no I/O.

use std::ops::Range;

use crate::error::{Error, ErrorKind, Result};
use crate::http::response::{MAX_HEADERS, MAX_HEAD_BYTES};

/// The most hex digits in a chunk size: 16 digits fill a `u64`, and a longer
/// size is either padding meant to confuse a parser or an overflow
/// (hyper's CVE-2021-32714).
pub const MAX_CHUNK_SIZE_DIGITS: u32 = 16;

/// The most bytes of chunk extensions on one chunk-size line. Extensions carry
/// nothing this client uses; a bound keeps a hostile server from streaming an
/// endless line.
pub const MAX_CHUNK_EXTENSION: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size { value: u64, digits: u32 },
    /// After the digits: optional whitespace, then `;ext` or the line end.
    AfterSize { value: u64 },
    /// Skipping a chunk extension up to the line end.
    Extension { value: u64, len: usize },
    /// Saw CR at the end of a size line.
    SizeLf { value: u64 },
    /// Inside chunk data.
    Data { remaining: u64 },
    /// Expecting CR (or LF) after chunk data.
    DataCr,
    /// Expecting LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Saw CR at the end of a trailer line; `empty` if the line was empty.
    TrailerLf { empty: bool },
    /// The last chunk and trailers are read.
    Done,
}

/// An incremental decoder of a chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    trailer_bytes: usize,
    trailer_fields: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            trailer_bytes: 0,
            trailer_fields: 0,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from the start of `input`.
    ///
    /// Returns how many bytes were consumed and, when the consumed bytes end
    /// with body data, the range of `input` that holds it. Framing bytes are
    /// consumed up to the next data or the end of `input`; a call returns at
    /// most one data range, so call again with the rest. After the end of the
    /// body nothing more is consumed.
    pub fn decode(&mut self, input: &[u8]) -> Result<(usize, Option<Range<usize>>)> {
        let mut i = 0;
        while i < input.len() {
            let byte = input[i];
            if matches!(
                self.state,
                State::TrailerStart | State::TrailerLine | State::TrailerLf { .. }
            ) {
                self.trailer_bytes += 1;
                if self.trailer_bytes > MAX_HEAD_BYTES {
                    return Err(Error::new(
                        ErrorKind::Limit,
                        format!("chunked trailers larger than {MAX_HEAD_BYTES} bytes"),
                    ));
                }
            }
            match self.state {
                State::Done => return Ok((i, None)),
                State::Data { remaining } => {
                    let available = (input.len() - i) as u64;
                    let n = available.min(remaining) as usize;
                    let start = i;
                    self.state = if n as u64 == remaining {
                        State::DataCr
                    } else {
                        State::Data {
                            remaining: remaining - n as u64,
                        }
                    };
                    return Ok((start + n, Some(start..start + n)));
                }
                State::Size { value, digits } => match hex_value(byte) {
                    Some(d) => {
                        if digits >= MAX_CHUNK_SIZE_DIGITS {
                            return Err(protocol(format!(
                                "chunk size longer than {MAX_CHUNK_SIZE_DIGITS} hex digits"
                            )));
                        }
                        self.state = State::Size {
                            value: (value << 4) | u64::from(d),
                            digits: digits + 1,
                        };
                    }
                    None if digits == 0 => {
                        return Err(protocol(format!(
                            "invalid chunk size: expected a hex digit, found {}",
                            describe(byte)
                        )))
                    }
                    None => {
                        self.state = State::AfterSize { value };
                        continue;
                    }
                },
                State::AfterSize { value } => match byte {
                    b' ' | b'\t' => {}
                    b';' => self.state = State::Extension { value, len: 0 },
                    b'\r' => self.state = State::SizeLf { value },
                    b'\n' => self.end_size_line(value),
                    _ => {
                        return Err(protocol(format!(
                            "invalid chunk size line: unexpected {}",
                            describe(byte)
                        )))
                    }
                },
                State::Extension { value, len } => match byte {
                    b'\r' => self.state = State::SizeLf { value },
                    b'\n' => self.end_size_line(value),
                    _ if len >= MAX_CHUNK_EXTENSION => {
                        return Err(Error::new(
                            ErrorKind::Limit,
                            format!("chunk extension longer than {MAX_CHUNK_EXTENSION} bytes"),
                        ))
                    }
                    _ => {
                        self.state = State::Extension {
                            value,
                            len: len + 1,
                        }
                    }
                },
                State::SizeLf { value } => match byte {
                    b'\n' => self.end_size_line(value),
                    _ => return Err(protocol("chunk size line: CR not followed by LF".into())),
                },
                State::DataCr => match byte {
                    b'\r' => self.state = State::DataLf,
                    b'\n' => {
                        self.state = State::Size {
                            value: 0,
                            digits: 0,
                        }
                    }
                    _ => return Err(protocol("chunk data longer than its size".into())),
                },
                State::DataLf => match byte {
                    b'\n' => {
                        self.state = State::Size {
                            value: 0,
                            digits: 0,
                        }
                    }
                    _ => return Err(protocol("chunk data not followed by CRLF".into())),
                },
                State::TrailerStart => match byte {
                    b'\r' => self.state = State::TrailerLf { empty: true },
                    b'\n' => self.state = State::Done,
                    _ => {
                        self.count_trailer_field()?;
                        self.state = State::TrailerLine;
                    }
                },
                State::TrailerLine => match byte {
                    b'\r' => self.state = State::TrailerLf { empty: false },
                    b'\n' => self.state = State::TrailerStart,
                    _ => {}
                },
                State::TrailerLf { empty } => match byte {
                    b'\n' if empty => self.state = State::Done,
                    b'\n' => self.state = State::TrailerStart,
                    _ => return Err(protocol("trailer line: CR not followed by LF".into())),
                },
            }
            i += 1;
        }
        Ok((i, None))
    }

    fn end_size_line(&mut self, value: u64) {
        self.state = if value == 0 {
            State::TrailerStart
        } else {
            State::Data { remaining: value }
        };
    }

    fn count_trailer_field(&mut self) -> Result<()> {
        self.trailer_fields += 1;
        if self.trailer_fields > MAX_HEADERS {
            return Err(Error::new(
                ErrorKind::Limit,
                format!("more than {MAX_HEADERS} chunked trailer fields"),
            ));
        }
        Ok(())
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn describe(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("'{}'", byte as char)
    } else {
        format!("byte 0x{byte:02x}")
    }
}

fn protocol(message: String) -> Error {
    Error::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns the body and
    /// whether the decoder reached the end.
    fn decode_in_steps(input: &[u8], step: usize) -> Result<(Vec<u8>, bool)> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        for piece in input.chunks(step.max(1)) {
            let mut offset = 0;
            while offset < piece.len() && !decoder.is_done() {
                let (used, data) = decoder.decode(&piece[offset..])?;
                if let Some(range) = data {
                    body.extend_from_slice(&piece[offset..][range]);
                }
                offset += used;
            }
        }
        Ok((body, decoder.is_done()))
    }

    const SAMPLE: &[u8] =
        b"5;name=value\r\nhello\r\n7\r\n, world\r\nA \r\n0123456789\r\n0\r\nExpires: never\r\nX: y\r\n\r\n";

    #[test]
    fn decodes_extensions_and_trailers_at_every_split() {
        for step in 1..=SAMPLE.len() {
            let (body, done) = decode_in_steps(SAMPLE, step).unwrap();
            assert_eq!(body, b"hello, world0123456789", "step {step}");
            assert!(done);
        }
    }

    #[test]
    fn stops_consuming_after_the_last_chunk() {
        let mut decoder = ChunkedDecoder::new();
        let input = b"0\r\n\r\nHTTP/1.1 200 OK";
        let (used, data) = decoder.decode(input).unwrap();
        assert_eq!((used, data), (5, None));
        assert!(decoder.is_done());
    }

    #[test]
    fn a_body_cut_before_the_last_chunk_is_not_done() {
        let (_, done) = decode_in_steps(b"5\r\nhello\r\n", 3).unwrap();
        assert!(!done);
    }

    #[test]
    fn oversized_and_malformed_sizes_are_refused() {
        for bad in [
            &b"ffffffffffffffffff\r\n"[..],
            b"00000000000000005\r\n",
            b"+5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"\r\n",
            b"5x\r\n",
            b"5\rx",
        ] {
            assert!(
                decode_in_steps(bad, 64).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn trailing_whitespace_after_the_size_is_tolerated() {
        let (body, done) = decode_in_steps(b"5 \t\r\nhello\r\n0\r\n\r\n", 4).unwrap();
        assert_eq!((body.as_slice(), done), (&b"hello"[..], true));
    }

    #[test]
    fn data_longer_than_its_size_is_refused() {
        assert!(decode_in_steps(b"2\r\nabc\r\n0\r\n\r\n", 64).is_err());
    }

    #[test]
    fn huge_extensions_and_endless_trailers_hit_limits() {
        let mut ext = b"5;".to_vec();
        ext.resize(1 << 20, b'a');
        assert_eq!(
            decode_in_steps(&ext, 4096).unwrap_err().kind(),
            ErrorKind::Limit
        );
        let mut trailers = b"0\r\n".to_vec();
        for i in 0..10_000 {
            trailers.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        assert_eq!(
            decode_in_steps(&trailers, 4096).unwrap_err().kind(),
            ErrorKind::Limit
        );
    }

    #[test]
    fn an_endless_trailer_line_hits_the_byte_limit() {
        let mut line = b"0\r\nX-Endless: ".to_vec();
        line.resize(1 << 20, b'a');
        let err = decode_in_steps(&line, 4096).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
        assert_eq!(err.message(), "chunked trailers larger than 65536 bytes");
    }

    #[test]
    fn a_101st_trailer_field_is_refused_at_its_first_byte() {
        let mut trailers = b"0\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            trailers.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        let (_, done) = decode_in_steps(&trailers, 7).unwrap();
        assert!(!done);
        trailers.push(b'Y');
        let err = decode_in_steps(&trailers, 7).unwrap_err();
        assert_eq!(err.message(), "more than 100 chunked trailer fields");
    }

    #[test]
    fn size_errors_say_what_was_found() {
        let message = |input: &[u8]| decode_in_steps(input, 64).unwrap_err().to_string();
        assert_eq!(
            message(b"+5\r\n"),
            "invalid chunk size: expected a hex digit, found '+'"
        );
        assert_eq!(
            message(b" 5\r\n"),
            "invalid chunk size: expected a hex digit, found byte 0x20"
        );
        assert_eq!(
            message(b"00000000000000005\r\n"),
            "chunk size longer than 16 hex digits"
        );
        assert_eq!(
            message(b"ffffffffffffffffff\r\n"),
            "chunk size longer than 16 hex digits"
        );
    }
}
