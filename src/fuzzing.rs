//! The bodies of the fuzz targets, kept in the library so that `cargo test`
//! replays every saved input on stable Rust and the targets in `fuzz/` stay
//! one line each.
//!
//! Each function takes arbitrary bytes and panics only when it finds a bug:
//! a parser that panics, disagrees with itself over different splits of its
//! input, or breaks a stated invariant.

use crate::http::body::HttpBody;
use crate::http::chunked::ChunkedDecoder;
use crate::http::conn::Connection;
use crate::http::response::{framing, parse_head, Framing};
use crate::manifest::parse;
use crate::pieces::piece_set::PieceSet;
use crate::sequence::{encode, SequenceFiles};
use crate::source::ByteSource;
use crate::url::Url;

/// Splits `data` into a small control prefix and the payload: the first byte
/// seeds the split points of incremental parsers.
fn control(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}

/// Cuts `payload` at points derived from `seed`: 1 to 64-byte pieces.
pub fn pieces(seed: u8, payload: &[u8]) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 0x9e37_0000;
    let mut out = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state % 64 + 1) as usize;
        let (piece, tail) = rest.split_at(len.min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}

/// The gzip decoder (`--compressed`): arbitrary bytes decode the same in
/// one piece and in any pieces with any room for output, and through the
/// body adapter; and the payload itself, made a gzip member, decodes back
/// to itself however it is cut.
#[cfg(feature = "gzip")]
pub fn gzip(data: &[u8]) {
    use crate::http::decoded::GunzipBody;
    use crate::http::gzip::decode_in_pieces;
    use crate::source::SliceSource;
    use crate::util::crc32::Crc32;

    let (seed, payload) = control(data);
    let room = usize::from(seed % 97) + 1;
    let whole = decode_in_pieces(&[payload], 1 << 16);
    assert_eq!(whole, decode_in_pieces(&pieces(seed, payload), room));
    let mut body = GunzipBody::new(SliceSource::chunked(payload, room), "fuzz");
    let mut through_body = Vec::new();
    let adapted = loop {
        match body.next_chunk() {
            Ok(Some(chunk)) => through_body.extend_from_slice(chunk),
            Ok(None) => break Ok(through_body),
            Err(_) => break Err(()),
        }
    };
    assert_eq!(whole.map_err(|_| ()), adapted);

    let mut member = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    member.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(payload, seed % 10));
    let mut crc = Crc32::new();
    crc.update(payload);
    member.extend_from_slice(&crc.value().to_le_bytes());
    member.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    assert_eq!(
        decode_in_pieces(&pieces(seed, &member), room),
        Ok(payload.to_vec())
    );
}

/// Response head parsing and the framing decision.
pub fn http_head(data: &[u8]) {
    let Ok(Some((head, used))) = parse_head(data) else {
        return;
    };
    assert!(used <= data.len());
    for request_was_head in [false, true] {
        if let Ok(plan) = framing(&head, request_was_head) {
            if let Framing::Length(n) = plan.framing {
                assert_eq!(head.content_length(), Some(n));
            }
            if request_was_head {
                assert_eq!(plan.framing, Framing::Empty);
            }
        }
    }
}

/// The chunked decoder fed arbitrary splits, against a whole-buffer
/// reference decoder written plainly.
pub fn chunked(data: &[u8]) {
    let (seed, payload) = control(data);
    let mut decoder = ChunkedDecoder::new();
    let mut body = Vec::new();
    let mut outcome: Result<bool, ()> = Ok(false);
    'feed: for piece in pieces(seed, payload) {
        let mut offset = 0;
        while offset < piece.len() && !decoder.is_done() {
            match decoder.decode(&piece[offset..]) {
                Ok((used, data)) => {
                    assert!(
                        used > 0 && offset + used <= piece.len(),
                        "decoder made no progress"
                    );
                    if let Some(range) = data {
                        body.extend_from_slice(&piece[offset..][range]);
                    }
                    offset += used;
                }
                Err(_) => {
                    outcome = Err(());
                    break 'feed;
                }
            }
        }
    }
    if outcome.is_ok() {
        outcome = Ok(decoder.is_done());
    }
    let (reference_body, reference) = reference_chunked(payload);
    match (outcome, reference) {
        (Ok(done), Reference::Done) => {
            assert!(done);
            assert_eq!(body, reference_body);
        }
        (Ok(done), Reference::Incomplete) => {
            assert!(!done);
            assert_eq!(body, reference_body);
        }
        (Err(()), Reference::Invalid) => {}
        (ours, theirs) => panic!("decoder says {ours:?}, reference says {theirs:?}"),
    }
}

#[derive(Debug)]
enum Reference {
    Done,
    Incomplete,
    Invalid,
}

/// The grammar `ChunkedDecoder` accepts, decoded from a whole buffer: hex
/// size (1 to 16 digits), optional spaces or tabs, optional `;extension` up
/// to 4096 bytes, CRLF or LF; data; CRLF or LF; after the zero chunk,
/// trailer lines until an empty one (at most 100 fields, 64 KiB).
fn reference_chunked(input: &[u8]) -> (Vec<u8>, Reference) {
    let mut body = Vec::new();
    let mut i = 0;
    let line_end = |i: usize| -> Option<(usize, usize)> {
        // (end of line content, start of next line)
        let nl = input[i..].iter().position(|&b| b == b'\n')? + i;
        Some(if nl > i && input[nl - 1] == b'\r' {
            (nl - 1, nl + 1)
        } else {
            (nl, nl + 1)
        })
    };
    loop {
        let digits = input[i..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if digits > 16 {
            return (body, Reference::Invalid);
        }
        if i + digits == input.len() {
            return (body, Reference::Incomplete);
        }
        if digits == 0 {
            return (body, Reference::Invalid);
        }
        let text = std::str::from_utf8(&input[i..i + digits]).unwrap_or("0");
        let size = u64::from_str_radix(text, 16).unwrap_or(0);
        let mut j = i + digits;
        while j < input.len() && matches!(input[j], b' ' | b'\t') {
            j += 1;
        }
        if j < input.len() && input[j] == b';' {
            let ext_start = j + 1;
            while j < input.len() && input[j] != b'\r' && input[j] != b'\n' {
                j += 1;
            }
            if j - ext_start > 4096 {
                return (body, Reference::Invalid);
            }
        }
        if j == input.len() {
            return (body, Reference::Incomplete);
        }
        match input[j] {
            b'\n' => j += 1,
            b'\r' if j + 1 == input.len() => return (body, Reference::Incomplete),
            b'\r' if input[j + 1] == b'\n' => j += 2,
            _ => return (body, Reference::Invalid),
        }
        if size == 0 {
            i = j;
            break;
        }
        let available = (input.len() - j) as u64;
        let take = available.min(size) as usize;
        body.extend_from_slice(&input[j..j + take]);
        if (take as u64) < size {
            return (body, Reference::Incomplete);
        }
        j += take;
        match input.get(j) {
            None => return (body, Reference::Incomplete),
            Some(b'\n') => j += 1,
            Some(b'\r') => match input.get(j + 1) {
                None => return (body, Reference::Incomplete),
                Some(b'\n') => j += 2,
                Some(_) => return (body, Reference::Invalid),
            },
            Some(_) => return (body, Reference::Invalid),
        }
        i = j;
    }
    let mut fields = 0;
    let trailer_start = i;
    loop {
        let Some((content_end, next)) = line_end(i) else {
            let over = input.len() - trailer_start > 64 * 1024;
            let bare_cr_inside = input[i..].iter().rev().skip(1).any(|&b| b == b'\r');
            // A field is counted at its first byte, not at its line's end.
            let field_too_many = input.get(i).is_some_and(|&b| b != b'\r') && fields >= 100;
            return (
                body,
                if over || bare_cr_inside || field_too_many {
                    Reference::Invalid
                } else {
                    Reference::Incomplete
                },
            );
        };
        if input[i..content_end].contains(&b'\r') {
            return (body, Reference::Invalid);
        }
        if next - trailer_start > 64 * 1024 {
            return (body, Reference::Invalid);
        }
        if content_end == i {
            return (body, Reference::Done);
        }
        fields += 1;
        if fields > 100 {
            return (body, Reference::Invalid);
        }
        i = next;
    }
}

/// URL parsing and resolution: a parsed or resolved URL parses again to
/// itself.
pub fn url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (base_text, reference) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(base) = Url::parse(base_text) else {
        return;
    };
    let again = Url::parse(&base.to_string()).expect("a parsed URL parses again");
    assert_eq!(again, base);
    if let Ok(resolved) = base.join(reference) {
        let again = Url::parse(&resolved.to_string()).expect("a resolved URL parses again");
        assert_eq!(again, resolved);
    }
}

/// A certificate's validity window (read for certificates trusted as they
/// are): one that reads, reads the same with bytes after it, and every
/// shorter prefix is `Partial`, never another answer.
pub fn certificate_validity(data: &[u8]) {
    use crate::http::x509::{validity, ValidityError};
    let (seed, payload) = control(data);
    let Ok(window) = validity(payload) else {
        return;
    };
    let mut longer = payload.to_vec();
    longer.push(seed);
    assert_eq!(
        validity(&longer),
        Ok(window),
        "bytes after it change nothing"
    );
    let mut cut = 0;
    for piece in pieces(seed, payload) {
        match validity(&payload[..cut]) {
            Err(ValidityError::Partial) => {}
            Ok(again) => assert_eq!(again, window, "a prefix reads the same"),
            Err(other) => panic!("a prefix of a readable certificate: {other}"),
        }
        cut += piece.len();
    }
}

/// The piece set a control file records: a set that parses prints back to
/// itself; pieces inserted in any order give sorted, disjoint, non-adjacent
/// runs that hold exactly the pieces inserted.
pub fn piece_set(data: &[u8]) {
    let (seed, payload) = control(data);
    let pieces = 1 + u64::from(seed) * 97;
    if let Some(set) = std::str::from_utf8(payload)
        .ok()
        .and_then(|text| PieceSet::parse(text, pieces))
    {
        let again = PieceSet::parse(&set.to_string(), pieces).expect("a printed set parses");
        assert_eq!(again, set);
        assert!(set.count() <= pieces);
    }
    let mut set = PieceSet::new();
    let mut inserted = [false; 256];
    for &byte in payload {
        set.insert(u64::from(byte));
        inserted[usize::from(byte)] = true;
    }
    for pair in set.runs().windows(2) {
        assert!(pair[0].end < pair[1].start, "runs apart: {:?}", set.runs());
    }
    for (index, &present) in inserted.iter().enumerate() {
        let index = index as u64;
        assert_eq!(set.contains(index), present, "piece {index}");
        let missing = set.first_missing_from(index);
        assert!(missing >= index && !set.contains(missing));
        assert!((index..missing).all(|i| set.contains(i)));
    }
    assert_eq!(
        set.count(),
        inserted.iter().filter(|&&present| present).count() as u64
    );
}

/// A whole response, head and body, through the client's read path over an
/// in-memory connection: the outcome is bytes or an error, never a panic;
/// `last_chunk` lends again what `next_chunk` returned.
pub fn response(data: &[u8]) {
    let mut conn = Connection::from_bytes(data.to_vec());
    let Ok(head) = conn.read_head() else {
        return;
    };
    // The dates a server sends: one that is read writes and reads back
    // as the same instant.
    for name in ["retry-after", "last-modified"] {
        if let Some(secs) = head.header(name).and_then(crate::http::date::parse) {
            let written = crate::http::date::format(secs);
            assert_eq!(crate::http::date::parse(&written), Some(secs), "{written}");
        }
    }
    // A file name a server suggests is a plain name, never a path.
    if let Some(name) = head
        .header("content-disposition")
        .and_then(crate::stream::disposition_file_name)
    {
        assert!(!name.contains(['/', '\\']) && name != ".." && !name.is_empty());
    }
    let Ok(plan) = framing(&head, false) else {
        return;
    };
    let url = Url::parse("http://fuzz.invalid/").expect("a fixed valid URL");
    let mut body = HttpBody::new(conn, plan.framing, None, url);
    let mut total = 0u64;
    let ended_cleanly = loop {
        match body.next_chunk() {
            Ok(Some(chunk)) => {
                assert!(!chunk.is_empty(), "a chunk is never empty");
                total += chunk.len() as u64;
                assert!(total <= data.len() as u64);
                // `part` re-lends the chunk through `last_chunk`.
                let chunk = chunk.to_vec();
                assert_eq!(body.last_chunk(), chunk, "last_chunk is the chunk returned");
                assert_eq!(body.received(), total);
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    // A body that ends without an error is whole: never a short file.
    if let (true, Framing::Length(n)) = (ended_cleanly, plan.framing) {
        assert_eq!(total, n);
    }
}

/// The manifest parser fed the payload in pieces: the same parts (or the
/// same error) as from the whole buffer, and never more than one line held.
pub fn manifest(data: &[u8]) {
    let (seed, payload) = control(data);
    let base = Url::parse("http://fuzz.invalid/dir/m.parts").expect("a fixed valid URL");
    let whole = parse::parse_all(&base, payload);
    let mut parser = parse::ManifestParser::new(base);
    let mut parts = Vec::new();
    let piecewise = (|| -> crate::Result<Vec<parse::PartSpec>> {
        for piece in pieces(seed, payload) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, part) = parser.feed(rest)?;
                assert!(used <= rest.len());
                assert!(used > 0 || part.is_some(), "feed makes progress");
                rest = &rest[used..];
                parts.extend(part);
            }
        }
        parts.extend(parser.finish()?);
        Ok(std::mem::take(&mut parts))
    })();
    match (whole, piecewise) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("whole {a:?} but piecewise {b:?}"),
    }
}

/// A source that hands out the given pieces, skipping empty ones.
struct Pieces<'a> {
    pieces: std::vec::IntoIter<&'a [u8]>,
}

impl ByteSource for Pieces<'_> {
    fn next_chunk(&mut self) -> crate::Result<Option<&[u8]>> {
        Ok(self.pieces.by_ref().find(|p| !p.is_empty()))
    }
}

/// The sequence splitter over arbitrary chunkings: the files it yields
/// re-encode to a prefix of the input (all of it when it ends cleanly), and
/// any chunking gives the same files and the same error.
pub fn sequence(data: &[u8]) {
    let (seed, payload) = control(data);
    let split = |pieces: Vec<&[u8]>| {
        let mut files = SequenceFiles::new(Pieces {
            pieces: pieces.into_iter(),
        });
        let mut out: Vec<Vec<u8>> = Vec::new();
        let end = loop {
            match files.next_file() {
                Ok(Some(mut file)) => {
                    let length = file.length();
                    let mut bytes = Vec::new();
                    let read = loop {
                        match file.next_chunk() {
                            Ok(Some(chunk)) => bytes.extend_from_slice(chunk),
                            Ok(None) => break Ok(()),
                            Err(e) => break Err(e),
                        }
                    };
                    assert!(bytes.len() as u64 <= length);
                    if let Err(e) = read {
                        break Err(e.to_string());
                    }
                    assert_eq!(bytes.len() as u64, length);
                    out.push(bytes);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e.to_string()),
            }
        };
        (out, end)
    };
    let (files, end) = split(pieces(seed, payload));
    let encoded = encode(files.iter().map(Vec::as_slice)).expect("small files");
    assert!(payload.starts_with(&encoded), "files re-encode to a prefix");
    if end.is_ok() {
        assert_eq!(encoded.len(), payload.len());
    }
    assert_eq!(split(vec![payload]), (files, end));
}

/// The file server's request side, everything a client controls: the
/// head, the path its target maps to (never a segment that could leave
/// the served directory), and the answer to its `Range`.
#[cfg(feature = "serve")]
pub fn serve_request(data: &[u8]) {
    use crate::http::response::MAX_HEAD_BYTES;
    use crate::serve::request::HeadError;
    use crate::serve::{files, range, request};
    let (seed, payload) = control(data);
    // Fed in pieces, as a slow client sends it, and parsed when the
    // connection loop (serve/conn.rs) parses: once a blank line may have
    // arrived, or the buffer is at the head-size limit.
    let whole = request::parse(payload);
    let mut buffer = Vec::new();
    let mut piecewise = Ok(None);
    for piece in pieces(seed, payload) {
        let before = buffer.len();
        buffer.extend_from_slice(piece);
        if request::may_be_complete(&buffer, buffer.len() - before)
            || buffer.len() >= MAX_HEAD_BYTES
        {
            piecewise = request::parse(&buffer);
            if !matches!(piecewise, Ok(None)) {
                break;
            }
        }
    }
    // Every outcome agrees: the same head, or the same refusal. When the
    // loop is still waiting for bytes, the whole input holds no head
    // either (it may hold a refusal the loop has not parsed yet: a blank
    // line that httparse skips before the request line, then garbage,
    // waits for the next blank line, the size limit or the head timeout).
    match (&whole, &piecewise) {
        (Ok(Some(a)), Ok(Some(b))) => assert_eq!(a, b, "whole and in pieces"),
        (Err(a), Err(b)) if a == b => {}
        // The loop stops reading at the limit: too large, whatever a
        // malformed byte further on would have said.
        (Err(HeadError::Malformed), Err(HeadError::TooLarge)) if buffer.len() >= MAX_HEAD_BYTES => {
        }
        (Ok(None) | Err(_), Ok(None)) => {}
        (whole, piecewise) => panic!("whole: {whole:?}; in pieces: {piecewise:?}"),
    }
    let Ok(Some((head, used))) = whole else {
        return;
    };
    assert!(used <= payload.len());
    if let Ok(segments) = files::segments(&head.origin_target()) {
        for segment in &segments {
            assert!(!segment.is_empty() && segment != "." && segment != "..");
            assert!(!segment.contains(['/', '\\', '\0']), "{segment:?}");
        }
    }
    let len = u64::from(seed) * 1000;
    for value in head.values("range") {
        match range::decide(value, len) {
            range::Answer::Partial(span) => assert!(span.start <= span.end && span.end < len),
            range::Answer::Full | range::Answer::Unsatisfiable => {}
        }
        let _ = range::if_range_holds(value, "\"x\"", 0);
    }
}

/// The bencode decoder: what decodes re-encodes to exactly the input, and
/// every value's span holds exactly that value's encoding.
pub fn bencode(data: &[u8]) {
    use crate::bencode::{decode, encode, Node, Value};
    fn check(data: &[u8], node: &Node) {
        assert_eq!(encode(&node.value), &data[node.span.clone()]);
        match &node.value {
            Value::List(items) => items.iter().for_each(|item| check(data, item)),
            Value::Dict(entries) => entries.iter().for_each(|(_, value)| check(data, value)),
            Value::Int(_) | Value::Bytes(_) => {}
        }
    }
    let Ok(node) = decode(data, data.len()) else {
        return;
    };
    assert_eq!(node.span, 0..data.len());
    check(data, &node);
}

/// The Metalink reader: its tokenizer says `Partial` for every cut of a
/// token it reads whole, and a document is either refused or lists files
/// whose names pass a torrent's path checks, each with HTTP(S) URLs
/// only, at most [`MAX_URLS`](crate::metalink::MAX_URLS) of them. The
/// same bytes as a `Link` or `Digest` value (Metalink/HTTP): each
/// duplicate's target is text that stood between `<` and `>`.
#[cfg(feature = "metalink")]
pub fn metalink(data: &[u8]) {
    use crate::metalink::xml::{next_token, Step};
    use crate::metalink::{Metalink, MAX_URLS};
    use crate::torrent::check_component;
    let (seed, payload) = control(data);
    if let Ok(text) = std::str::from_utf8(payload) {
        for (target, _) in crate::http::duplicates::duplicate_links(text) {
            assert!(text.contains(&format!("<{target}>")), "{target:?}");
        }
        let _ = crate::http::duplicates::sha256_of_digest(text);
    }
    let mut at = 0;
    while let Ok(step) = next_token(&payload[at..]) {
        let used = match step {
            Step::Token(_, used) | Step::Skipped(used) => used,
            Step::Partial => break,
        };
        assert!(used > 0 && at + used <= payload.len());
        let cut = usize::from(seed) % used;
        assert_eq!(next_token(&payload[at..at + cut]), Ok(Step::Partial));
        at += used;
    }
    let Ok(metalink) = Metalink::parse(payload) else {
        return;
    };
    assert!(!metalink.files.is_empty());
    for file in &metalink.files {
        for component in &file.path {
            assert_eq!(check_component(component), Ok(()), "{component:?}");
        }
        assert!(!file.urls.is_empty() && file.urls.len() <= MAX_URLS);
        for url in &file.urls {
            let lower = url.to_ascii_lowercase();
            assert!(lower.starts_with("http://") || lower.starts_with("https://"));
        }
        if let (Some(pieces), Some(size)) = (&file.pieces, file.size) {
            assert_eq!(pieces.digests.len() as u64, size.div_ceil(pieces.length));
        }
    }
}

/// The `.torrent` reader: a torrent either is refused or holds only paths
/// that pass the checks, files laid end to end, as many piece hashes as
/// pieces, and a span map that covers each piece's bytes once, pad files
/// left out.
pub fn metainfo(data: &[u8]) {
    use crate::torrent::{check_component, Metainfo, MAX_COMPONENTS, MAX_PATH_BYTES};
    let Ok(m) = Metainfo::parse(data) else {
        return;
    };
    let mut offset = 0;
    for file in m.files() {
        let path = file.path();
        assert!(!path.is_empty() && path.len() <= MAX_COMPONENTS);
        assert!(path.iter().map(|c| c.len() + 1).sum::<usize>() <= MAX_PATH_BYTES);
        for component in path {
            assert_eq!(check_component(component), Ok(()), "{component:?}");
        }
        assert_eq!(file.offset(), offset);
        offset += file.length();
    }
    assert_eq!(m.length(), offset);
    let layout = m.layout();
    assert_eq!(layout.pieces(), m.piece_hashes().len() as u64);
    // The first and last pieces, and a few between: a fuzzed torrent may
    // have many.
    let step = (layout.pieces() / 64).max(1);
    for index in (0..layout.pieces())
        .step_by(step as usize)
        .chain(layout.pieces().checked_sub(1))
    {
        let (first, last) = layout.range(index);
        let mut at = first;
        let mut written = 0;
        for span in m.piece_spans(index) {
            let file = &m.files()[span.file];
            assert!(!file.is_pad() && span.length > 0);
            assert!(span.torrent_offset >= at);
            assert_eq!(file.offset() + span.file_offset, span.torrent_offset);
            assert!(span.file_offset + span.length <= file.length());
            at = span.torrent_offset + span.length;
            written += span.length;
        }
        assert!(at <= last + 1);
        let pad: u64 = m
            .files()
            .iter()
            .filter(|f| f.is_pad())
            .map(|f| {
                (last + 1)
                    .min(f.offset() + f.length())
                    .saturating_sub(first.max(f.offset()))
            })
            .sum();
        assert_eq!(written + pad, last + 1 - first, "piece {index}");
    }
}

/// The tracker answer parsers: an HTTP tracker's bencoded answer and a UDP
/// tracker's datagrams (fed to the state machine as the answer to its
/// connect, then, with the transaction id patched in, to its announce)
/// never panic, and what they accept holds at most `MAX_PEERS` distinct
/// peers with a port, an interval within bounds and short messages. The
/// bytes are also read as a UDP announce answer with IPv4 and with IPv6
/// peer records.
pub fn tracker_response(data: &[u8]) {
    use crate::torrent::tracker::{http_response::Family, udp::parse_announce_answer};
    use crate::torrent::tracker::{
        Announce, Event, HttpAnswer, HttpError, Peer, UdpError, UdpTracker, MAX_INTERVAL,
        MAX_MESSAGE_BYTES, MAX_PEERS, MIN_INTERVAL,
    };
    use std::time::Instant;
    fn check_peers(peers: &[Peer]) {
        assert!(peers.len() <= MAX_PEERS);
        let distinct: std::collections::HashSet<_> = peers.iter().map(|p| p.addr).collect();
        assert_eq!(distinct.len(), peers.len());
        assert!(peers.iter().all(|p| p.addr.port() != 0));
    }
    let interval = MIN_INTERVAL..=MAX_INTERVAL;
    match HttpAnswer::parse(data) {
        Ok(a) => {
            assert!(interval.contains(&a.interval));
            assert!(a
                .min_interval
                .is_none_or(|m| interval.contains(&m) && m <= a.interval));
            assert!(a.warning.is_none_or(|w| w.len() <= MAX_MESSAGE_BYTES));
            check_peers(&a.peers);
        }
        Err(HttpError::Failure(text)) => assert!(text.len() <= MAX_MESSAGE_BYTES),
        Err(_) => {}
    }
    let announce = Announce {
        info_hash: [1; 20],
        peer_id: [2; 20],
        port: 1,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::None,
        numwant: None,
        key: 0,
    };
    let now = Instant::now();
    let mut udp = UdpTracker::new(announce, now).with_transaction_ids(Box::new(|| 7));
    let connect = udp.poll(now).expect("a first request").expect("a connect");
    assert_eq!(connect.len(), 16);
    let mut datagram = data.to_vec();
    let result = udp.handle(&datagram, now);
    if let (Ok(None), Some(request)) = (&result, udp.poll(now).ok().flatten()) {
        // Connected: the data was a connect answer. Answer the announce
        // with the same bytes, our transaction id in place.
        assert_eq!(request.len(), 98);
        if datagram.len() >= 8 {
            datagram[..4].copy_from_slice(&1u32.to_be_bytes());
            datagram[4..8].copy_from_slice(&7u32.to_be_bytes());
        }
        match udp.handle(&datagram, now) {
            Ok(Some(a)) => {
                assert!(interval.contains(&a.interval));
                check_peers(&a.peers);
            }
            Err(UdpError::Tracker(text)) => assert!(text.len() <= MAX_MESSAGE_BYTES),
            _ => {}
        }
    }
    // The same bytes as an announce answer over each family: 6-byte and
    // 18-byte peer records.
    for family in [Family::V4, Family::V6] {
        if let Ok(a) = parse_announce_answer(data, family) {
            assert!(interval.contains(&a.interval));
            check_peers(&a.peers);
            let v4 = family == Family::V4;
            assert!(a.peers.iter().all(|p| p.addr.is_ipv4() == v4));
        }
    }
}

/// The peer wire decoder fed the payload in pieces, as a socket delivers
/// it, for a torrent of a piece count the seed picks: never a panic, every
/// message re-encodes to exactly the bytes it was read from, need-more
/// asks for more than the buffer holds, and any chunking reads the same
/// messages and meets the same error as the whole buffer. The handshake
/// is read from every prefix: need-more until 68 bytes, then an answer,
/// and an error once met stays the same error as bytes arrive.
pub fn peer_message(data: &[u8]) {
    use crate::torrent::wire::{Decoded, Handshake};
    let (seed, payload) = control(data);
    let piece_count = u32::from(seed) * 13;
    // The hash the handshake is checked against is the payload's own (when
    // it is long enough), so that inputs get past it; an odd seed makes the
    // peer id ours too.
    let id_at = |range: std::ops::Range<usize>| -> [u8; 20] {
        payload
            .get(range)
            .and_then(|bytes| bytes.try_into().ok())
            .unwrap_or([0; 20])
    };
    let info_hash = id_at(28..48);
    let our_id = match seed % 2 {
        1 => id_at(48..68),
        _ => *b"-PF0100-fuzzfuzzfuzz",
    };
    let mut first_error = None;
    let mut messages = payload;
    for cut in 0..=payload.len().min(68) {
        match (
            Handshake::parse(&payload[..cut], &info_hash, &our_id),
            &first_error,
        ) {
            (Err(e), None) => first_error = Some(e),
            (Err(e), Some(first)) => assert_eq!(&e, first),
            (Ok(_), Some(first)) => panic!("{first:?} at a shorter prefix"),
            (Ok(Decoded::NeedMore { at_least }), None) => assert!(at_least > cut),
            (Ok(Decoded::Done { value, used }), None) => {
                assert_eq!((cut, used), (68, 68));
                assert_eq!(value.encode()[..], payload[..68]);
                // A handshake is followed by messages.
                messages = &payload[68..];
            }
        }
    }
    let whole = peer_messages(vec![messages], piece_count);
    let split = peer_messages(pieces(seed, messages), piece_count);
    assert_eq!(whole, split);
    assert!(messages.starts_with(&whole.0));
}

/// The messages read from `chunks` fed one after another into a growing
/// buffer, re-encoded end to end, and the error that ended them.
fn peer_messages(
    chunks: Vec<&[u8]>,
    piece_count: u32,
) -> (Vec<u8>, Option<crate::torrent::wire::Error>) {
    use crate::torrent::wire::{decode, Decoded, ExtensionHandshake, Message};
    let mut buffer = Vec::new();
    let mut read = Vec::new();
    for chunk in chunks {
        buffer.extend_from_slice(chunk);
        loop {
            match decode(&buffer, piece_count) {
                Ok(Decoded::NeedMore { at_least }) => {
                    assert!(at_least > buffer.len(), "need-more with the bytes there");
                    break;
                }
                Ok(Decoded::Done { value, used }) => {
                    assert!(used > 0 && used <= buffer.len());
                    let again = value.encode();
                    assert_eq!(again, buffer[..used], "re-encodes to its bytes");
                    if let Message::Extended { id: 0, payload } = value {
                        if let Ok(handshake) = ExtensionHandshake::parse(payload) {
                            let reqq = handshake.max_outstanding();
                            assert!((1..=crate::torrent::wire::MAX_PEER_REQQ).contains(&reqq));
                        }
                    }
                    read.extend_from_slice(&again);
                    buffer.drain(..used);
                }
                Err(e) => return (read, Some(e)),
            }
        }
    }
    (read, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays every saved input of every target: the seed corpora and the
    /// inputs that once found a bug.
    #[test]
    fn replay_saved_fuzz_inputs() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        type Target = fn(&[u8]);
        // Without the `serve` and `gzip` features nothing is added below.
        #[cfg_attr(not(any(feature = "serve", feature = "gzip")), allow(unused_mut))]
        let mut targets: Vec<(&str, Target)> = vec![
            ("http_head", http_head),
            ("manifest", manifest),
            ("sequence", sequence),
            ("chunked", chunked),
            ("url", url),
            ("response", response),
            ("piece_set", piece_set),
            ("bencode", bencode),
            ("metainfo", metainfo),
            ("tracker_response", tracker_response),
            ("peer_message", peer_message),
            ("certificate_validity", certificate_validity),
        ];
        #[cfg(feature = "serve")]
        targets.push(("serve_request", serve_request));
        #[cfg(feature = "metalink")]
        targets.push(("metalink", metalink));
        #[cfg(feature = "gzip")]
        targets.push(("gzip", gzip));
        // Every target replays its own seed corpus, which must be there and
        // hold inputs; regressions/NAME exists only for targets that found
        // a bug.
        let mut empty: Vec<String> = Vec::new();
        for (name, target) in &targets {
            for dir in ["corpus", "regressions"] {
                let path = root.join(dir).join(name);
                let entries = match std::fs::read_dir(&path) {
                    Ok(entries) => entries,
                    Err(_) if dir == "regressions" => continue,
                    Err(e) => panic!("{}: {e}", path.display()),
                };
                let mut replayed = 0;
                for entry in entries {
                    let entry = entry.expect("a directory entry");
                    let bytes = std::fs::read(entry.path()).expect("readable input");
                    target(&bytes);
                    replayed += 1;
                }
                if replayed == 0 {
                    empty.push(path.display().to_string());
                }
            }
        }
        assert!(empty.is_empty(), "no saved inputs in {empty:?}");
        // Every target in fuzz/fuzz_targets is replayed here (serve_request
        // only with the `serve` feature, gzip with `gzip`).
        let mut built: Vec<String> = std::fs::read_dir(root.join("fuzz_targets"))
            .expect("fuzz/fuzz_targets")
            .map(|e| e.expect("a directory entry").path())
            .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
            .filter(|name| cfg!(feature = "serve") || name != "serve_request")
            .filter(|name| cfg!(feature = "metalink") || name != "metalink")
            .filter(|name| cfg!(feature = "gzip") || name != "gzip")
            .collect();
        built.sort();
        let mut replayed: Vec<String> = targets.iter().map(|(n, _)| n.to_string()).collect();
        replayed.sort();
        assert_eq!(built, replayed, "fuzz targets and replayed targets");
    }

    #[test]
    fn reference_and_decoder_agree_on_a_101st_trailer_field_cut_short() {
        let mut sample = b"\x05".to_vec();
        sample.extend_from_slice(b"3\r\nabc\r\n0\r\n");
        for i in 0..100 {
            sample.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        chunked(&sample);
        sample.push(b'Y');
        chunked(&sample);
        sample.push(b'\r');
        chunked(&sample);
    }

    #[test]
    fn reference_and_decoder_agree_on_samples() {
        for sample in [
            &b"\x005;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n"[..],
            b"\x073\nabc\n0\n\n",
            b"\x015\r\nhel",
            b"\x02+5\r\n",
            b"\x030\r\n\r",
            b"\x040\r\nX\rY\r\n\r\n",
        ] {
            chunked(sample);
        }
    }
}
