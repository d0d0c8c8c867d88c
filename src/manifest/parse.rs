//! The incremental `.parts` parser: manifest text in, one [`PartSpec`] at a
//! time out.
//!
//! The parser never needs the whole manifest: [`ManifestParser::feed`] takes
//! whatever bytes have arrived, consumes complete lines, and stops as soon
//! as a part is complete, so the first part can be fetched while the rest of
//! the manifest is still on the wire, and a manifest of a million parts
//! runs in the memory of one line and one part. Bytes after an incomplete
//! line are kept (at most [`MAX_LINE`]) until the next call.
//!
//! ```
//! use partfetch::manifest::ManifestParser;
//! use partfetch::Url;
//!
//! let base = Url::parse("http://example.com/dir/movie.parts").unwrap();
//! let mut parser = ManifestParser::new(base);
//! let (used, part) = parser.feed(b"a.bin\nhttp://b.example/a.bin\n--\nrest").unwrap();
//! let part = part.unwrap();
//! assert_eq!(used, 32);
//! assert_eq!(part.alternatives[0].to_string(), "http://example.com/dir/a.bin");
//! assert_eq!(part.alternatives.len(), 2);
//! // "rest" is an incomplete line: it waits for more input or the end.
//! assert_eq!(parser.feed(b"rest").unwrap(), (4, None));
//! let last = parser.finish().unwrap().unwrap();
//! assert_eq!(last.alternatives[0].to_string(), "http://example.com/dir/rest");
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::sha256;
use crate::url::Url;

/// The longest manifest line, terminator excluded. Real lines are URLs;
/// a longer line is refused rather than buffered without bound.
pub const MAX_LINE: usize = 8 * 1024;

/// The most alternatives one part may list: enough for any real set of
/// mirrors, and a bound on the memory one part can take.
pub const MAX_ALTERNATIVES: usize = 1024;

/// The UTF-8 byte order mark, ignored at the start of a manifest.
const BYTE_ORDER_MARK: &[u8] = b"\xEF\xBB\xBF";

/// One part of a manifest, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartSpec {
    /// Where the part can be fetched, in order of preference, resolved
    /// against the manifest's final URL.
    pub alternatives: Vec<Url>,
    /// Marked `(*)`: may be served from and stored in the download's cache.
    pub cacheable: bool,
    /// `(size=N)`: the part's exact length.
    pub size: Option<u64>,
    /// `(sha256=HEX)`: the digest of the part's bytes.
    pub sha256: Option<[u8; 32]>,
    /// The manifest line the part starts on (from 1), for error messages.
    pub line: usize,
}

impl PartSpec {
    /// Whether `bytes` are what the part's attributes say it is: its size
    /// and its digest, when the manifest gives them.
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        self.size.is_none_or(|size| size == bytes.len() as u64)
            && self
                .sha256
                .is_none_or(|digest| digest == sha256::digest(bytes))
    }
}

/// The part being read: what its lines have said so far.
#[derive(Debug, Default)]
struct Pending {
    alternatives: Vec<Url>,
    cacheable: bool,
    size: Option<u64>,
    sha256: Option<[u8; 32]>,
    /// The first line that belongs to the part; 0 while it has none.
    first_line: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.first_line == 0
    }
}

/// Parses a manifest incrementally. See the module documentation.
#[derive(Debug)]
pub struct ManifestParser {
    base: Url,
    /// An incomplete line carried over from earlier input.
    carry: Vec<u8>,
    /// The number of the line being read (from 1).
    line: usize,
    part: Pending,
    finished: bool,
}

impl ManifestParser {
    /// A parser for a manifest whose final URL (after redirects) is `base`.
    pub fn new(base: Url) -> ManifestParser {
        ManifestParser {
            base,
            carry: Vec::new(),
            line: 1,
            part: Pending::default(),
            finished: false,
        }
    }

    /// Consumes complete lines of `input` until a part is complete or the
    /// input runs out. Returns the bytes consumed (all of them unless a part
    /// was completed) and the completed part, if any. Call again with the
    /// rest of the input; bytes of an incomplete line are kept internally.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<PartSpec>)> {
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                if self.carry.len() + rest.len() > MAX_LINE + 1 {
                    return Err(self.error(format!("longer than {MAX_LINE} bytes")));
                }
                self.carry.extend_from_slice(rest);
                return Ok((input.len(), None));
            };
            used += newline + 1;
            let part = if self.carry.is_empty() {
                self.end_line(&rest[..newline])?
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(&rest[..newline]);
                let part = self.end_line(&line);
                line.clear();
                self.carry = line;
                part?
            };
            if part.is_some() {
                return Ok((used, part));
            }
        }
        Ok((used, None))
    }

    /// Ends the manifest: the last line needs no terminator, and the last
    /// part no `--`. Returns that last part, if any.
    pub fn finish(&mut self) -> Result<Option<PartSpec>> {
        if self.finished {
            return Ok(None);
        }
        self.finished = true;
        let carry = std::mem::take(&mut self.carry);
        if let Some(part) = self.end_line(&carry)? {
            return Ok(Some(part));
        }
        self.end_part()
    }

    /// The line being read (from 1).
    pub fn line(&self) -> usize {
        self.line
    }

    /// Handles one line (without its LF); returns a part when the line
    /// completed one.
    fn end_line(&mut self, raw: &[u8]) -> Result<Option<PartSpec>> {
        // A CR before the LF belongs to the terminator.
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        // Editors on Windows start UTF-8 files with a byte order mark; left
        // in, it would become part of the first URL and fail as a 404 whose
        // cause no one can see.
        let raw = match self.line {
            1 => raw.strip_prefix(BYTE_ORDER_MARK).unwrap_or(raw),
            _ => raw,
        };
        if raw.len() > MAX_LINE {
            return Err(self.error(format!("longer than {MAX_LINE} bytes")));
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(self.error("not UTF-8"));
        };
        let result = self.interpret(text.trim_matches([' ', '\t']));
        self.line += 1;
        result
    }

    fn interpret(&mut self, text: &str) -> Result<Option<PartSpec>> {
        if text.is_empty() || text.starts_with('#') {
            return Ok(None);
        }
        if text == "--" {
            return self.end_part();
        }
        if self.part.first_line == 0 {
            self.part.first_line = self.line;
        }
        if text == "(*)" {
            self.part.cacheable = true;
        } else if let Some(inner) = text.strip_prefix('(') {
            // A mark whose `)` was forgotten would otherwise be fetched as a
            // relative URL, and its check silently dropped.
            let Some(inner) = inner.strip_suffix(')') else {
                return Err(self.error(format!(
                    "'{}' opens a mark but does not close it with ')' (a relative URL \
                     starting with '(' is written './(...')",
                    text.escape_debug()
                )));
            };
            self.attribute(inner)?;
        } else {
            if self.part.alternatives.len() >= MAX_ALTERNATIVES {
                return Err(self.error(format!(
                    "a part lists more than {MAX_ALTERNATIVES} alternatives"
                )));
            }
            let url = self
                .base
                .join(text)
                .map_err(|e| self.error(format!("bad URL: {}", e.message())))?;
            self.part.alternatives.push(url);
        }
        Ok(None)
    }

    fn attribute(&mut self, inner: &str) -> Result<()> {
        let Some((name, value)) = inner.split_once('=') else {
            return Err(self.error(format!(
                "'({})' is not an attribute (name=value)",
                inner.escape_debug()
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        match name {
            "size" => {
                if self.part.size.is_some() {
                    return Err(self.error("size given twice"));
                }
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(
                        self.error(format!("size '{}' is not a number", value.escape_debug()))
                    );
                }
                let size = value.parse::<u64>().map_err(|_| {
                    self.error(format!(
                        "size '{}' is too large (at most {})",
                        value.escape_debug(),
                        u64::MAX
                    ))
                })?;
                self.part.size = Some(size);
            }
            "sha256" => {
                if self.part.sha256.is_some() {
                    return Err(self.error("sha256 given twice"));
                }
                let digest = sha256::parse_hex(value).ok_or_else(|| {
                    self.error(format!(
                        "sha256 '{}' is not 64 hex digits",
                        value.escape_debug()
                    ))
                })?;
                self.part.sha256 = Some(digest);
            }
            _ => {
                // Quoted with escapes: the manifest's text must not reach the
                // user's terminal as control sequences.
                return Err(self.error(format!(
                    "unknown attribute '{}' (known: size, sha256); \
                     a check partfetch cannot perform is refused",
                    name.escape_debug()
                )));
            }
        }
        Ok(())
    }

    /// Closes the current part: `Some` when it has URLs, nothing when it
    /// had no lines at all, an error when it has marks but no URL.
    fn end_part(&mut self) -> Result<Option<PartSpec>> {
        let part = std::mem::take(&mut self.part);
        if part.is_empty() {
            return Ok(None);
        }
        if part.alternatives.is_empty() {
            return Err(Error::new(
                ErrorKind::Manifest,
                format!("line {}: a part with no URL", part.first_line),
            )
            .with_subject(self.base.redacted()));
        }
        Ok(Some(PartSpec {
            alternatives: part.alternatives,
            cacheable: part.cacheable,
            size: part.size,
            sha256: part.sha256,
            line: part.first_line,
        }))
    }

    fn error(&self, what: impl std::fmt::Display) -> Error {
        Error::new(ErrorKind::Manifest, format!("line {}: {what}", self.line))
            .with_subject(self.base.redacted())
    }
}

/// Parses a whole manifest held in memory: the parts, or the first error.
pub fn parse_all(base: &Url, text: &[u8]) -> Result<Vec<PartSpec>> {
    let mut parser = ManifestParser::new(base.clone());
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let (used, part) = parser.feed(rest)?;
        rest = &rest[used..];
        match part {
            Some(part) => parts.push(part),
            None if rest.is_empty() => break,
            None => {}
        }
    }
    parts.extend(parser.finish()?);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://m.test/dir/list.parts").unwrap()
    }

    fn urls(parts: &[PartSpec]) -> Vec<Vec<String>> {
        parts
            .iter()
            .map(|p| p.alternatives.iter().map(|u| u.to_string()).collect())
            .collect()
    }

    fn parse(text: &str) -> Result<Vec<PartSpec>> {
        parse_all(&base(), text.as_bytes())
    }

    #[test]
    fn the_spec_example_has_three_parts() {
        let parts = parse(
            "http://a.example/picture.jpg-part1\nhttp://b.example/picture.jpg-part1\n--\n\
             (*)\nhttp://a.example/chorus.txt\n--\nhttp://a.example/endless.txt.parts\n",
        )
        .unwrap();
        assert_eq!(
            urls(&parts),
            [
                vec![
                    "http://a.example/picture.jpg-part1",
                    "http://b.example/picture.jpg-part1"
                ],
                vec!["http://a.example/chorus.txt"],
                vec!["http://a.example/endless.txt.parts"],
            ]
        );
        assert_eq!(
            parts.iter().map(|p| p.cacheable).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(parts.iter().map(|p| p.line).collect::<Vec<_>>(), [1, 4, 7]);
    }

    #[test]
    fn crlf_whitespace_comments_and_separators_are_tolerated() {
        let parts =
            parse("\r\n# comment\r\n  \ta\t \r\n--\r\n--\r\n\r\n  b  \r\n  -- \r\n--").unwrap();
        assert_eq!(
            urls(&parts),
            [vec!["http://m.test/dir/a"], vec!["http://m.test/dir/b"]]
        );
    }

    #[test]
    fn an_empty_manifest_has_no_parts() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse("\n# only a comment\n--\n").unwrap().is_empty());
    }

    #[test]
    fn relative_references_resolve_against_the_base() {
        let parts = parse("../up\n--\n/root?q=1\n--\n//other.test/x\n").unwrap();
        assert_eq!(
            urls(&parts),
            [
                vec!["http://m.test/up"],
                vec!["http://m.test/root?q=1"],
                vec!["http://other.test/x"]
            ]
        );
    }

    #[test]
    fn attributes_are_read() {
        let digest = sha256::to_hex(&sha256::digest(b"x"));
        let parts = parse(&format!("(size=12)\n(sha256={digest})\nx\n")).unwrap();
        assert_eq!(parts[0].size, Some(12));
        assert_eq!(parts[0].sha256, Some(sha256::digest(b"x")));
    }

    #[test]
    fn a_byte_order_mark_before_the_first_line_is_ignored() {
        let parts = parse("\u{feff}a.bin\r\n--\r\nb.bin\r\n").unwrap();
        assert_eq!(parts[0].alternatives[0].path(), "/dir/a.bin");
        // Arriving a byte at a time, it is the same.
        let mut parser = ManifestParser::new(base());
        for byte in "\u{feff}a.bin\n".bytes() {
            assert_eq!(parser.feed(&[byte]).unwrap().1, None);
        }
        let part = parser.finish().unwrap().unwrap();
        assert_eq!(part.alternatives[0].path(), "/dir/a.bin");
        // Anywhere else it is part of the line, as any other character.
        let parts = parse("a.bin\n--\n\u{feff}b.bin\n").unwrap();
        assert_eq!(parts[1].alternatives[0].path(), "/dir/%EF%BB%BFb.bin");
    }

    #[test]
    fn a_size_beyond_u64_says_it_is_too_large() {
        let err = parse("(size=18446744073709551616)\nx\n").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert_eq!(
            parse("(size=18446744073709551615)\nx\n").unwrap()[0].size,
            Some(u64::MAX)
        );
        let err = parse("(size=)\nx\n").unwrap_err();
        assert!(err.to_string().contains("not a number"), "{err}");
    }

    #[test]
    fn a_part_accepts_only_bytes_that_match_its_attributes() {
        let digest = sha256::to_hex(&sha256::digest(b"abc"));
        let sized = &parse("(size=3)\nx\n").unwrap()[0];
        assert!(sized.accepts(b"abc"));
        assert!(!sized.accepts(b"abcd"));
        let hashed = &parse(&format!("(sha256={digest})\nx\n")).unwrap()[0];
        assert!(hashed.accepts(b"abc"));
        assert!(!hashed.accepts(b"abd"));
        assert!(parse("x\n").unwrap()[0].accepts(b"anything"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&[u8], &str)] = &[
            (b"x\n--\n(colour=red)\nx\n", "line 3"),
            (b"x\n(size=-1)\n", "line 2"),
            (b"x\n(size=1)\n(size=2)\n", "line 3"),
            (b"(sha256=abc)\nx\n", "line 1"),
            (b"(nonsense)\nx\n", "line 1"),
            (b"x\n(size=5\ny\n", "line 2"),
            (b"x\n--\n\xff\n", "line 3"),
            (b"x\n--\n(*)\n", "line 3"),
            (b"x\n--\n(*)\n--\ny\n", "line 3"),
            (b"a\nb\nhttp://[::g]/\n", "line 3"),
            (b"a\nftp://x/\n", "line 2"),
        ];
        for (text, line) in cases {
            let err = parse_all(&base(), text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Manifest);
            let shown = err.to_string();
            assert!(
                shown.contains(line) && shown.contains("m.test/dir/list.parts"),
                "{:?}: {shown}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_even_unterminated() {
        let long = format!("x\n--\n{}\n", "a".repeat(MAX_LINE + 1));
        assert!(parse(&long).unwrap_err().to_string().contains("line 3"));
        // Fed byte by byte, the carried line is bounded too.
        let mut parser = ManifestParser::new(base());
        let mut failed = false;
        for _ in 0..MAX_LINE * 2 {
            if parser.feed(b"a").is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
        assert!(parser.carry.len() <= MAX_LINE + 1);
        // Exactly the limit is fine, with or without CR.
        let exact = format!("{}\r\n", "a".repeat(MAX_LINE));
        assert_eq!(parse(&exact).unwrap().len(), 1);
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_parts() {
        let text = b"(*)\r\nhttp://a.test/1\n  b2 \n--\n# c\n(size=3)\nc\n--\n--\nd\ne";
        let whole = parse_all(&base(), text).unwrap();
        for split in 0..=text.len() {
            for step in [1, 2, 5] {
                let mut parser = ManifestParser::new(base());
                let mut parts = Vec::new();
                let mut chunks = vec![&text[..split]];
                chunks.extend(text[split..].chunks(step));
                for chunk in chunks {
                    let mut rest = chunk;
                    while !rest.is_empty() {
                        let (used, part) = parser.feed(rest).unwrap();
                        rest = &rest[used..];
                        parts.extend(part);
                    }
                }
                parts.extend(parser.finish().unwrap());
                assert_eq!(parts, whole, "split at {split}, step {step}");
            }
        }
    }

    #[test]
    fn feed_stops_after_each_part() {
        let mut parser = ManifestParser::new(base());
        let input = b"a\n--\nb\n--\nc\n";
        let (used, part) = parser.feed(input).unwrap();
        assert_eq!(used, 5);
        assert!(part.is_some());
        let (used2, part) = parser.feed(&input[used..]).unwrap();
        assert_eq!(used2, 5);
        assert!(part.is_some());
        assert_eq!(parser.feed(&input[10..]).unwrap(), (2, None));
        assert!(parser.finish().unwrap().is_some());
        assert!(parser.finish().unwrap().is_none());
    }

    #[test]
    fn nul_and_control_bytes_in_a_url_line_are_refused_naming_the_line() {
        for (text, shown) in [
            (&b"x\n--\na\0b\n"[..], "0x00"),
            (b"x\n--\nhttp://h/\x1b[2J\n", "0x1b"),
            (b"x\n--\n\0\n", "0x00"),
        ] {
            let err = parse_all(&base(), text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Manifest);
            assert_eq!(
                err.to_string(),
                format!(
                    "line 3: bad URL: URL contains control character {shown}: \
                     http://m.test/dir/list.parts"
                )
            );
        }
        // In a comment, a NUL is just a byte of the comment.
        assert_eq!(parse("# \0\nx\n").unwrap().len(), 1);
    }

    #[test]
    fn invalid_utf8_is_refused_naming_the_line() {
        let err = parse_all(&base(), b"x\n\xc3\x28\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: not UTF-8: http://m.test/dir/list.parts"
        );
    }

    #[test]
    fn too_many_alternatives_are_refused() {
        let text = "x\n".repeat(MAX_ALTERNATIVES + 1);
        let err = parse(&text).unwrap_err();
        assert!(err.to_string().contains("alternatives"), "{err}");
    }

    #[test]
    fn manifest_text_quoted_in_errors_cannot_carry_terminal_escapes() {
        for text in [
            "(\u{1b}[2J=1)\nx\n",
            "(size=\u{1b}[2J)\nx\n",
            "(sha256=\u{1b}]0;title\u{7})\nx\n",
            "(\u{1b}[31m)\nx\n",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
            assert!(err.contains("\\u{1b}"), "{err:?}");
        }
    }
}
