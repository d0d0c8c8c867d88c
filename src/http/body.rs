//! A response body as a [`ByteSource`] lending slices of the read buffer.
//!
//! Owns reading the body that `response::framing` delimited: exactly
//! `Content-Length` bytes, chunks through the [`ChunkedDecoder`], or bytes
//! until the server closes. A body that ends early is an error, never a short
//! stream. A body read to its end on a reusable connection gives the
//! connection back to the pool.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::http::chunked::ChunkedDecoder;
use crate::http::conn::Connection;
use crate::http::pool::{Pool, PoolKey};
use crate::http::response::Framing;
use crate::http::socket::Watch;
use crate::source::ByteSource;
use crate::url::Url;

enum State {
    Length { remaining: u64 },
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// Where a connection goes back to once its body is read.
pub(crate) struct ReturnTo {
    pub(crate) pool: Arc<Pool>,
    pub(crate) key: PoolKey,
}

/// The body of a response.
pub struct HttpBody {
    conn: Option<Connection>,
    state: State,
    return_to: Option<ReturnTo>,
    url: Url,
    received: u64,
    /// The range of the connection buffer lent by the last chunk.
    lent: std::ops::Range<usize>,
}

impl HttpBody {
    pub(crate) fn new(
        conn: Connection,
        framing: Framing,
        return_to: Option<ReturnTo>,
        url: Url,
    ) -> HttpBody {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => State::Chunked(ChunkedDecoder::new()),
            Framing::UntilClose => State::UntilClose,
        };
        let mut body = HttpBody {
            conn: Some(conn),
            state,
            return_to,
            url,
            received: 0,
            lent: 0..0,
        };
        body.release_if_done();
        body
    }

    /// A body with no bytes and no connection.
    pub(crate) fn empty(url: Url) -> HttpBody {
        HttpBody {
            conn: None,
            state: State::Done,
            return_to: None,
            url,
            received: 0,
            lent: 0..0,
        }
    }

    /// The chunk the last call to `next_chunk` returned (empty if none).
    ///
    /// Lets a wrapper decide what to do with a chunk, then lend it again
    /// without holding the first borrow across its own bookkeeping.
    pub fn last_chunk(&self) -> &[u8] {
        match &self.conn {
            Some(conn) => &conn.buffer()[self.lent.clone()],
            None => &[],
        }
    }

    fn lend(&mut self, range: std::ops::Range<usize>) -> &[u8] {
        self.received += range.len() as u64;
        self.lent = range.clone();
        let conn = self
            .conn
            .as_ref()
            .expect("a chunk is lent only from a held connection");
        &conn.buffer()[range]
    }

    /// How many body bytes have been handed out.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// True once the whole body has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// True when the next `next_chunk` can start without waiting for the
    /// network: the body is over, or bytes of it have already arrived.
    pub fn has_bytes_ready(&mut self) -> bool {
        match (&self.state, self.conn.as_mut()) {
            (State::Done, _) | (_, None) => true,
            (_, Some(conn)) => conn.has_bytes_ready(),
        }
    }

    /// True when the next `next_chunk` can start without waiting for the
    /// network, waiting up to `within` for bytes of the body to arrive.
    pub fn has_bytes_within(&mut self, within: std::time::Duration) -> bool {
        match (&self.state, self.conn.as_mut()) {
            (State::Done, _) | (_, None) => true,
            (_, Some(conn)) => conn.has_bytes_within(within),
        }
    }

    /// True when the next `next_chunk` hands on payload without waiting for
    /// the network; false at the end. For a chunked body, buffered bytes
    /// count only when there are more of them than the framing between two
    /// chunks takes (the CRLF after a chunk and the next size line arrive
    /// with it, and alone they give nothing to hand on): a consumer that
    /// holds bytes back until the source would wait must not be told to
    /// keep holding them for a trickle of one-byte chunks.
    pub fn has_payload_ready(&mut self) -> bool {
        /// More than a chunk's CRLF and a size line of any real server.
        const CHUNK_FRAMING: usize = 64;
        match (&self.state, self.conn.as_mut()) {
            (State::Done, _) | (_, None) => false,
            (State::Chunked(_), Some(conn)) => conn.buffered().len() > CHUNK_FRAMING,
            (_, Some(conn)) => conn.has_bytes_ready(),
        }
    }

    /// Reads and discards the rest of a body of at most `limit` more bytes,
    /// so that its connection can be reused; a longer body is dropped with
    /// its connection. Errors are ignored: this is only an optimisation.
    pub fn discard(mut self, limit: u64) {
        let small = match &self.state {
            State::Length { remaining } => *remaining <= limit,
            State::Chunked(_) => true,
            _ => false,
        };
        if !small {
            return;
        }
        let start = self.received;
        while self.received - start <= limit {
            match self.next_chunk() {
                Ok(Some(_)) => {}
                _ => return,
            }
        }
    }

    /// Watches the waits for the rest of this body with `watch` (see
    /// [`Watch`]); a body read to its end has none.
    pub fn set_watch(&mut self, watch: Option<Watch>) -> std::io::Result<()> {
        match &mut self.conn {
            Some(conn) => conn.set_watch(watch),
            None => Ok(()),
        }
    }

    fn release_if_done(&mut self) {
        if !matches!(self.state, State::Done) {
            return;
        }
        if let (Some(conn), Some(ret)) = (self.conn.take(), self.return_to.take()) {
            if conn.buffered().is_empty() {
                ret.pool.put(ret.key, conn);
            }
        }
    }

    fn fail(&mut self, err: Error) -> Error {
        self.conn = None;
        self.state = State::Done;
        self.return_to = None;
        err.with_subject(self.url.redacted())
    }

    fn truncated(&mut self, detail: String) -> Error {
        let err = Error::new(
            ErrorKind::Protocol,
            format!("connection closed early: {detail}"),
        );
        self.fail(err)
    }

    /// Fills the connection's buffer when it is empty; false at end of stream.
    fn ensure_buffered(&mut self) -> Result<bool> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        if !conn.buffered().is_empty() {
            return Ok(true);
        }
        match conn.fill() {
            Ok(n) => Ok(n > 0),
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl ByteSource for HttpBody {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        loop {
            match self.state {
                State::Done => {
                    self.release_if_done();
                    return Ok(None);
                }
                State::Length { remaining } => {
                    if !self.ensure_buffered()? {
                        let detail = format!(
                            "received {} of {} bytes",
                            self.received,
                            self.received + remaining
                        );
                        return Err(self.truncated(detail));
                    }
                    let conn = self
                        .conn
                        .as_mut()
                        .expect("ensure_buffered keeps the connection");
                    let n = (conn.buffered().len() as u64).min(remaining) as usize;
                    let start = conn.consume(n);
                    self.state = if n as u64 == remaining {
                        State::Done
                    } else {
                        State::Length {
                            remaining: remaining - n as u64,
                        }
                    };
                    return Ok(Some(self.lend(start..start + n)));
                }
                State::UntilClose => {
                    if !self.ensure_buffered()? {
                        self.state = State::Done;
                        self.conn = None;
                        return Ok(None);
                    }
                    let conn = self
                        .conn
                        .as_mut()
                        .expect("ensure_buffered keeps the connection");
                    let n = conn.buffered().len();
                    let start = conn.consume(n);
                    return Ok(Some(self.lend(start..start + n)));
                }
                State::Chunked(ref mut decoder) => {
                    let Some(conn) = self.conn.as_mut() else {
                        return Ok(None);
                    };
                    let decoded = decoder.decode(conn.buffered());
                    let (used, data) = match decoded {
                        Ok(step) => step,
                        Err(e) => return Err(self.fail(e)),
                    };
                    let done = decoder.is_done();
                    let start = conn.consume(used);
                    if done {
                        self.state = State::Done;
                    }
                    if let Some(range) = data {
                        if !range.is_empty() {
                            // Through `lend`, so that `last_chunk` (which
                            // `part` reads) is this chunk too.
                            return Ok(Some(self.lend(start + range.start..start + range.end)));
                        }
                    }
                    if done {
                        continue;
                    }
                    if !self.ensure_buffered()? {
                        let detail = format!(
                            "chunked body cut before its last chunk after {} bytes",
                            self.received
                        );
                        return Err(self.truncated(detail));
                    }
                }
            }
        }
    }
}

impl Drop for HttpBody {
    fn drop(&mut self) {
        self.release_if_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body of `framing` read from a connection whose peer sends `bytes`
    /// and closes: the bytes handed on, and how the body ended.
    fn read(bytes: &[u8], framing: Framing) -> (Vec<u8>, Result<()>) {
        let url = Url::parse("http://body.test/x").unwrap();
        let mut body = HttpBody::new(Connection::from_bytes(bytes.to_vec()), framing, None, url);
        let mut out = Vec::new();
        loop {
            match body.next_chunk() {
                Ok(Some(chunk)) => out.extend_from_slice(chunk),
                Ok(None) => return (out, Ok(())),
                Err(e) => return (out, Err(e)),
            }
        }
    }

    #[test]
    fn last_chunk_lends_the_chunk_just_returned_whatever_the_framing() {
        for (bytes, framing) in [
            (&b"hello"[..], Framing::Length(5)),
            (b"hello", Framing::UntilClose),
            (b"5\r\nhello\r\n0\r\n\r\n", Framing::Chunked),
        ] {
            let url = Url::parse("http://body.test/x").unwrap();
            let conn = Connection::from_bytes(bytes.to_vec());
            let mut body = HttpBody::new(conn, framing, None, url);
            let chunk = body.next_chunk().unwrap().unwrap().to_vec();
            assert_eq!(chunk, b"hello", "{framing:?}");
            assert_eq!(body.last_chunk(), b"hello", "{framing:?}");
            assert_eq!(body.received(), 5, "{framing:?}");
        }
    }

    #[test]
    fn a_body_longer_than_its_content_length_is_cut_at_the_length() {
        let (out, end) = read(b"helloEXTRA BYTES", Framing::Length(5));
        assert_eq!(out, b"hello");
        assert!(end.is_ok());
    }

    #[test]
    fn a_body_shorter_than_its_content_length_is_an_error_naming_both_counts() {
        let (out, end) = read(b"hel", Framing::Length(5));
        assert_eq!(out, b"hel");
        let err = end.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(
            err.to_string(),
            "connection closed early: received 3 of 5 bytes: http://body.test/x"
        );
    }

    #[test]
    fn a_chunked_body_cut_before_its_last_chunk_is_an_error() {
        let (out, end) = read(b"5\r\nhello\r\n", Framing::Chunked);
        assert_eq!(out, b"hello");
        let err = end.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(err.message().contains("before its last chunk"), "{err}");
    }
}
