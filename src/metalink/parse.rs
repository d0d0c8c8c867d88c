//! What a Metalink v4 document (RFC 5854) says, read from its tree of
//! elements: each `<file>`'s name, checked to stay inside the download's
//! directory, its size, its SHA-256, its piece hashes and its HTTP(S)
//! URLs in priority order.
//!
//! Elements of other namespaces (extensions) and of the Metalink
//! namespace that a download has no use for (`<publisher>`,
//! `<metaurl>`, `<signature>`, …) are passed over. The XML itself is
//! [`xml`]'s.

use std::fmt;

use crate::metalink::xml::{self, Element, XmlError};
use crate::torrent::PathProblem;

/// The namespace of Metalink v4 (RFC 5854).
pub const NAMESPACE: &str = "urn:ietf:params:xml:ns:metalink";

/// The most bytes of a Metalink document. It is read whole: a document
/// of ten thousand files with a hundred mirrors each is a few MiB; more
/// is no list of files but a way to fill memory.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// The most `<file>`s of one document: each is a download of its own,
/// run one after the other.
pub const MAX_FILES: usize = 10_000;

/// The most URLs kept for one file: more mirrors than connections are of
/// no use, and a list of thousands would only slow the choice of one.
pub const MAX_URLS: usize = 256;

/// The priority a `<url>` without one has: after all that have one
/// (RFC 5854 allows 1 to 999999, the lowest first).
const NO_PRIORITY: u32 = 1_000_000;

/// What a Metalink document lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metalink {
    /// In the order written.
    pub files: Vec<MetalinkFile>,
}

/// One `<file>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetalinkFile {
    /// Its path under the download's directory, one component each, each
    /// checked as a torrent's are.
    pub path: Vec<String>,
    /// Its `<size>`, which the download must have.
    pub size: Option<u64>,
    /// Its `<hash type="sha-256">`.
    pub sha256: Option<[u8; 32]>,
    /// Its `<pieces>` of a hash this crate computes.
    pub pieces: Option<Pieces>,
    /// Its HTTP and HTTPS URLs, the highest priority (lowest number)
    /// first, those of equal priority in the order written.
    pub urls: Vec<String>,
}

impl MetalinkFile {
    /// Its path joined with `/`, as the document wrote it.
    pub fn name(&self) -> String {
        self.path.join("/")
    }
}

/// The hash a `<pieces>` element names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceHash {
    /// `sha-256`.
    Sha256,
    /// `sha-1`.
    Sha1,
}

/// A file's `<pieces>`: the hash of every `length` bytes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pieces {
    /// Which hash.
    pub hash: PieceHash,
    /// Bytes of each piece but the last.
    pub length: u64,
    /// One digest per piece, in order.
    pub digests: Vec<Vec<u8>>,
}

/// What is wrong with a Metalink document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetalinkError {
    /// Longer than [`MAX_DOCUMENT_BYTES`].
    TooLarge,
    /// Not well-formed, or outside the subset of XML read.
    Xml(XmlError),
    /// The root is not `<metalink>` in the Metalink v4 namespace.
    NotMetalink,
    /// No `<file>`.
    NoFiles,
    /// More `<file>`s than [`MAX_FILES`].
    TooManyFiles,
    /// A `<file>` without a `name`.
    MissingName,
    /// A name that would leave the download's directory, or that no file
    /// system takes.
    BadName {
        /// The name as written.
        name: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// Two `<file>`s of one name.
    DuplicateName(String),
    /// A `<size>` that is no number.
    BadSize(String),
    /// A hash that is not hex of its length.
    BadHash(String),
    /// A `<pieces>` of length 0 or without one, or with a count of hashes
    /// that does not fit the size.
    BadPieces(String),
    /// A `<file>` with no HTTP or HTTPS URL.
    NoUrl(String),
}

impl fmt::Display for MetalinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetalinkError::TooLarge => write!(f, "longer than {MAX_DOCUMENT_BYTES} bytes"),
            MetalinkError::Xml(e) => write!(f, "not a Metalink document: {e}"),
            MetalinkError::NotMetalink => write!(
                f,
                "not a Metalink v4 document: its root is not <metalink xmlns=\"{NAMESPACE}\">"
            ),
            MetalinkError::NoFiles => write!(f, "lists no <file>"),
            MetalinkError::TooManyFiles => write!(f, "lists more than {MAX_FILES} files"),
            MetalinkError::MissingName => write!(f, "a <file> has no name"),
            MetalinkError::BadName { name, problem } => {
                write!(f, "the file name {name:?} has {problem}")
            }
            MetalinkError::DuplicateName(name) => write!(f, "two files are named {name:?}"),
            MetalinkError::BadSize(size) => write!(f, "the size {size:?} is not a number"),
            MetalinkError::BadHash(hash) => write!(f, "the hash {hash:?} is not hex of its length"),
            MetalinkError::BadPieces(why) => write!(f, "bad <pieces>: {why}"),
            MetalinkError::NoUrl(name) => write!(f, "the file {name:?} has no HTTP or HTTPS URL"),
        }
    }
}

impl std::error::Error for MetalinkError {}

impl Metalink {
    /// Reads a whole Metalink v4 document.
    pub fn parse(document: &[u8]) -> Result<Metalink, MetalinkError> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(MetalinkError::TooLarge);
        }
        let root = xml::parse_document(document).map_err(MetalinkError::Xml)?;
        if !is(&root, "metalink") {
            return Err(MetalinkError::NotMetalink);
        }
        let mut files: Vec<MetalinkFile> = Vec::new();
        for element in root.children.iter().filter(|c| is(c, "file")) {
            if files.len() == MAX_FILES {
                return Err(MetalinkError::TooManyFiles);
            }
            let file = read_file(element)?;
            if files.iter().any(|f| f.path == file.path) {
                return Err(MetalinkError::DuplicateName(file.name()));
            }
            files.push(file);
        }
        if files.is_empty() {
            return Err(MetalinkError::NoFiles);
        }
        Ok(Metalink { files })
    }
}

/// Whether `element` is the Metalink element `local`.
fn is(element: &Element, local: &str) -> bool {
    element.local == local && element.namespace.as_deref() == Some(NAMESPACE)
}

fn children<'a>(element: &'a Element, local: &'a str) -> impl Iterator<Item = &'a Element> {
    element.children.iter().filter(move |c| is(c, local))
}

fn read_file(element: &Element) -> Result<MetalinkFile, MetalinkError> {
    let name = element
        .attribute("name")
        .ok_or(MetalinkError::MissingName)?;
    let path: Vec<String> = name.split('/').map(str::to_owned).collect();
    crate::torrent::check_path(&path).map_err(|problem| MetalinkError::BadName {
        name: name.to_owned(),
        problem,
    })?;
    let size = match children(element, "size").next() {
        Some(size) => {
            let text = size.text.trim();
            let parsed = text
                .parse()
                .ok()
                .filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
            Some(parsed.ok_or_else(|| MetalinkError::BadSize(crate::util::quote::cut(text)))?)
        }
        None => None,
    };
    let mut sha256 = None;
    for hash in children(element, "hash") {
        let kind = hash.attribute("type").unwrap_or("");
        if kind.eq_ignore_ascii_case("sha-256") && sha256.is_none() {
            sha256 = Some(hex::<32>(&hash.text)?);
        }
    }
    let mut pieces = None;
    for found in children(element, "pieces") {
        if let Some(read) = read_pieces(found, size)? {
            // SHA-256 is preferred to SHA-1 whatever the order.
            if pieces
                .as_ref()
                .is_none_or(|p: &Pieces| p.hash == PieceHash::Sha1)
            {
                pieces = Some(read);
            }
        }
    }
    let mut urls: Vec<(u32, String)> = Vec::new();
    for url in children(element, "url") {
        let text = url.text.trim();
        let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            continue;
        }
        let priority = url
            .attribute("priority")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(NO_PRIORITY);
        urls.push((priority, text.to_owned()));
    }
    // Stable: equal priorities keep the document's order.
    urls.sort_by_key(|(priority, _)| *priority);
    urls.truncate(MAX_URLS);
    if urls.is_empty() {
        return Err(MetalinkError::NoUrl(name.to_owned()));
    }
    Ok(MetalinkFile {
        path,
        size,
        sha256,
        pieces,
        urls: urls.into_iter().map(|(_, url)| url).collect(),
    })
}

/// A `<pieces>` of a hash this crate computes (`None` for another).
fn read_pieces(element: &Element, size: Option<u64>) -> Result<Option<Pieces>, MetalinkError> {
    let kind = element.attribute("type").unwrap_or("");
    let hash = if kind.eq_ignore_ascii_case("sha-256") {
        PieceHash::Sha256
    } else if kind.eq_ignore_ascii_case("sha-1") {
        PieceHash::Sha1
    } else {
        return Ok(None);
    };
    let length: u64 = element
        .attribute("length")
        .and_then(|l| l.trim().parse().ok())
        .filter(|&l| l > 0)
        .ok_or_else(|| MetalinkError::BadPieces("no length, or a length of 0".into()))?;
    let mut digests = Vec::new();
    for digest in children(element, "hash") {
        digests.push(match hash {
            PieceHash::Sha256 => hex::<32>(&digest.text)?.to_vec(),
            PieceHash::Sha1 => hex::<20>(&digest.text)?.to_vec(),
        });
    }
    if let Some(size) = size {
        let expected = size.div_ceil(length);
        if digests.len() as u64 != expected {
            return Err(MetalinkError::BadPieces(format!(
                "{} hashes where a size of {size} in pieces of {length} has {expected}",
                digests.len()
            )));
        }
    } else if digests.is_empty() {
        return Err(MetalinkError::BadPieces("no hashes".into()));
    }
    Ok(Some(Pieces {
        hash,
        length,
        digests,
    }))
}

/// `N` bytes written as 2N hex digits.
fn hex<const N: usize>(text: &str) -> Result<[u8; N], MetalinkError> {
    let text = text.trim();
    crate::util::hex::decode(text)
        .ok_or_else(|| MetalinkError::BadHash(crate::util::quote::cut(text)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metalink::xml::XmlErrorKind;

    const HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn document(files: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <metalink xmlns=\"{NAMESPACE}\">\n<published>2026-01-01T00:00:00Z</published>\n\
             {files}</metalink>\n"
        )
    }

    fn parse(files: &str) -> Result<Metalink, MetalinkError> {
        Metalink::parse(document(files).as_bytes())
    }

    #[test]
    fn files_are_read_with_urls_in_priority_order() {
        let metalink = parse(&format!(
            "<file name=\"dir/a.iso\">\n<size>1000</size>\n\
             <hash type=\"md5\">00112233445566778899aabbccddeeff</hash>\n\
             <hash type=\"sha-256\">{HASH}</hash>\n\
             <url>http://none/a</url>\n\
             <url priority=\"2\" location=\"de\">http://two/a</url>\n\
             <url priority=\"1\">https://one/a</url>\n\
             <url priority=\"2\">http://two-b/a</url>\n\
             <url priority=\"1\">ftp://ftp/a</url>\n\
             <metaurl mediatype=\"torrent\">http://t/a.torrent</metaurl>\n\
             </file>\n<file name='b'><url>http://x/b?a=1&amp;b=2</url></file>\n"
        ))
        .expect("parsed");
        assert_eq!(metalink.files.len(), 2);
        let a = &metalink.files[0];
        assert_eq!(a.path, ["dir", "a.iso"]);
        assert_eq!(a.size, Some(1000));
        assert_eq!(a.sha256, crate::sha256::parse_hex(HASH));
        assert_eq!(
            a.urls,
            [
                "https://one/a",
                "http://two/a",
                "http://two-b/a",
                "http://none/a"
            ]
        );
        let b = &metalink.files[1];
        assert_eq!((b.size, b.sha256), (None, None));
        assert_eq!(b.urls, ["http://x/b?a=1&b=2"]);
    }

    #[test]
    fn a_prefixed_namespace_is_the_same_document() {
        let metalink = Metalink::parse(
            format!(
                "<m:metalink xmlns:m='{NAMESPACE}'><m:file name='f'>\
                 <m:url>http://h/f</m:url><x:url xmlns:x='urn:other'>http://no/</x:url>\
                 </m:file></m:metalink>"
            )
            .as_bytes(),
        )
        .expect("parsed");
        assert_eq!(metalink.files[0].urls, ["http://h/f"]);
        // Metalink v3's namespace, or none, is not this format.
        for other in ["http://www.metalinker.org/", ""] {
            let doc = format!("<metalink xmlns='{other}'><file name='f'/></metalink>");
            assert_eq!(
                Metalink::parse(doc.as_bytes()),
                Err(MetalinkError::NotMetalink)
            );
        }
    }

    #[test]
    fn pieces_are_read_and_counted_against_the_size() {
        let sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709";
        let metalink = parse(&format!(
            "<file name='f'><size>2500</size>\
             <pieces length='1000' type='sha-1'><hash>{sha1}</hash><hash>{sha1}</hash>\
             <hash>{sha1}</hash></pieces>\
             <pieces length='1024' type='sha-256'><hash>{HASH}</hash><hash>{HASH}</hash>\
             <hash>{HASH}</hash></pieces>\
             <url>http://h/f</url></file>"
        ))
        .expect("parsed");
        let pieces = metalink.files[0].pieces.as_ref().expect("pieces");
        assert_eq!((pieces.hash, pieces.length), (PieceHash::Sha256, 1024));
        assert_eq!(pieces.digests.len(), 3);
        let short = parse(&format!(
            "<file name='f'><size>2500</size><pieces length='1000' type='sha-256'>\
             <hash>{HASH}</hash></pieces><url>http://h/f</url></file>"
        ));
        assert!(matches!(short, Err(MetalinkError::BadPieces(_))));
        let zero = parse(&format!(
            "<file name='f'><pieces length='0' type='sha-256'><hash>{HASH}</hash>\
             </pieces><url>http://h/f</url></file>"
        ));
        assert!(matches!(zero, Err(MetalinkError::BadPieces(_))));
    }

    #[test]
    fn names_outside_the_directory_are_refused() {
        for (name, problem) in [
            ("../etc/passwd", PathProblem::Dots),
            ("a/../../b", PathProblem::Dots),
            ("/etc/passwd", PathProblem::Empty),
            ("a//b", PathProblem::Empty),
            ("", PathProblem::Empty),
            ("C:evil", PathProblem::Drive),
            ("a\\..\\b", PathProblem::Separator),
            ("nul", PathProblem::Reserved),
        ] {
            let got = parse(&format!("<file name='{name}'><url>http://h/</url></file>"));
            assert_eq!(
                got,
                Err(MetalinkError::BadName {
                    name: name.to_owned(),
                    problem
                }),
                "{name:?}"
            );
        }
        let twice = parse(
            "<file name='a'><url>http://h/</url></file><file name='a'><url>http://h/</url></file>",
        );
        assert_eq!(twice, Err(MetalinkError::DuplicateName("a".into())));
    }

    #[test]
    fn files_without_what_a_download_needs_are_refused() {
        assert_eq!(parse(""), Err(MetalinkError::NoFiles));
        assert_eq!(
            parse("<file><url>http://h/</url></file>"),
            Err(MetalinkError::MissingName)
        );
        assert_eq!(
            parse("<file name='f'><url>ftp://h/f</url></file>"),
            Err(MetalinkError::NoUrl("f".into()))
        );
        assert_eq!(
            parse("<file name='f'><size>-1</size><url>http://h/</url></file>"),
            Err(MetalinkError::BadSize("-1".into()))
        );
        assert!(matches!(
            parse("<file name='f'><hash type='sha-256'>abc</hash><url>http://h/</url></file>"),
            Err(MetalinkError::BadHash(_))
        ));
    }

    #[test]
    fn hostile_xml_is_refused_before_any_file_is_read() {
        let bomb = format!(
            "<!DOCTYPE metalink [<!ENTITY a 'aaaaaaaaaa'>]>{}",
            document("<file name='&a;'><url>http://h/</url></file>")
        );
        assert!(matches!(
            Metalink::parse(bomb.as_bytes()),
            Err(MetalinkError::Xml(XmlError {
                kind: XmlErrorKind::Declaration,
                ..
            }))
        ));
        let huge = vec![b' '; MAX_DOCUMENT_BYTES + 1];
        assert_eq!(Metalink::parse(&huge), Err(MetalinkError::TooLarge));
    }
}
