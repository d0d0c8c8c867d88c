//! The subset of XML a Metalink document needs, read from bytes: a
//! tokenizer written as an explicit state machine, and the tree of
//! elements built from its tokens.
//!
//! In scope: elements, attributes in single or double quotes, text, CDATA
//! sections, comments and processing instructions (skipped), the five
//! predefined entities and numeric character references, and namespace
//! declarations (`xmlns`, `xmlns:p`), which resolve each element's name.
//!
//! Out of scope, and refused: a DOCTYPE or any other `<!` declaration, so
//! no entity can be defined and none expands into more than a character.
//! A Metalink document comes from anyone: nesting, attributes, names and
//! text are all bounded, and the tokenizer returns [`Step::Partial`]
//! rather than assume its input is whole.

use std::fmt;

/// The deepest nesting of elements: a Metalink document is four deep
/// (`metalink`, `file`, `pieces`, `hash`); an extension may add a few.
/// Deeper is a way to exhaust the stack or memory, not a document.
pub const MAX_DEPTH: usize = 32;

/// The most bytes of one text run, CDATA section or attribute value, and
/// of the text of one element: a URL or a hash is far shorter.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// The most bytes of an element's or attribute's name.
pub const MAX_NAME_BYTES: usize = 256;

/// The most attributes of one element: `<url>` has three.
pub const MAX_ATTRIBUTES: usize = 32;

/// The most bytes of a tag, its attributes and their values included.
const MAX_TAG_BYTES: usize = MAX_ATTRIBUTES * (MAX_NAME_BYTES + 8) + 2 * MAX_TEXT_BYTES;

/// What is wrong with a document, and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// What is wrong.
    pub kind: XmlErrorKind,
    /// The offset in the document where the token it concerns starts.
    pub offset: usize,
}

/// What is wrong with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XmlErrorKind {
    /// A DOCTYPE, an entity declaration, or another `<!` declaration.
    Declaration,
    /// An entity other than the five XML predefines (`&lt;` …).
    UnknownEntity,
    /// A numeric character reference to no character (or to NUL).
    BadCharacterReference,
    /// An `&` with no `;` close after it.
    BareAmpersand,
    /// Elements nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A text, CDATA section or attribute value longer than
    /// [`MAX_TEXT_BYTES`].
    TextTooLong,
    /// A name longer than [`MAX_NAME_BYTES`].
    NameTooLong,
    /// More attributes than [`MAX_ATTRIBUTES`] on one element.
    TooManyAttributes,
    /// The same attribute twice on one element.
    DuplicateAttribute,
    /// A tag that breaks the syntax: a missing name, `=` or quote, a `<`
    /// in an attribute value.
    MalformedTag,
    /// An end tag that is not the open element's.
    MismatchedEnd,
    /// A prefix bound by no `xmlns:` declaration.
    UnboundPrefix,
    /// Text other than white space outside the root element, a second
    /// root, or no root at all.
    NotOneRoot,
    /// The document ends inside a tag, a comment or an element.
    Truncated,
    /// Bytes that are not UTF-8.
    NotUtf8,
}

impl fmt::Display for XmlErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XmlErrorKind::Declaration => "a DOCTYPE or entity declaration, which is refused",
            XmlErrorKind::UnknownEntity => {
                "an entity other than &lt; &gt; &amp; &quot; &apos;, which is refused"
            }
            XmlErrorKind::BadCharacterReference => "a character reference to no character",
            XmlErrorKind::BareAmpersand => "an & that starts no entity",
            XmlErrorKind::TooDeep => "elements nested more than 32 deep",
            XmlErrorKind::TextTooLong => "a text or attribute value longer than 64 KiB",
            XmlErrorKind::NameTooLong => "a name longer than 256 bytes",
            XmlErrorKind::TooManyAttributes => "more than 32 attributes on one element",
            XmlErrorKind::DuplicateAttribute => "the same attribute twice on one element",
            XmlErrorKind::MalformedTag => "a malformed tag",
            XmlErrorKind::MismatchedEnd => "an end tag that closes no open element",
            XmlErrorKind::UnboundPrefix => "a namespace prefix that no xmlns declares",
            XmlErrorKind::NotOneRoot => "not exactly one root element",
            XmlErrorKind::Truncated => "the document ends inside a tag or an element",
            XmlErrorKind::NotUtf8 => "bytes that are not UTF-8",
        })
    }
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.kind, self.offset)
    }
}

impl std::error::Error for XmlError {}

/// An attribute, its value decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// As written, with its prefix.
    pub name: String,
    /// With its entities and character references replaced.
    pub value: String,
}

/// One token of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `<name a="v">`, or `<name/>` when `empty`.
    Start {
        /// As written, with its prefix.
        name: String,
        /// In the order written.
        attributes: Vec<Attribute>,
        /// Written `<name/>`: no end tag follows.
        empty: bool,
    },
    /// `</name>`.
    End {
        /// As written, with its prefix.
        name: String,
    },
    /// Character data, decoded (a CDATA section as it is).
    Text(String),
}

/// What [`next_token`] found at the start of its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A token, and the bytes it took.
    Token(Token, usize),
    /// A comment or processing instruction of this many bytes, skipped.
    Skipped(usize),
    /// The input ends before the token does: more bytes are needed.
    Partial,
}

/// Where the tag reader is, between two bytes of a start tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagState {
    /// In the element's name.
    Name,
    /// After the name or a value: white space, a name, `/` or `>`.
    Between,
    /// In an attribute's name.
    AttributeName,
    /// After an attribute's name: white space or `=`.
    BeforeEquals,
    /// After `=`: white space or a quote.
    BeforeValue,
    /// Inside a value opened by this quote.
    Value(u8),
    /// After `/`: only `>`.
    Slash,
}

/// Reads the token at the start of `input`. Errors carry offsets within
/// `input`.
pub fn next_token(input: &[u8]) -> Result<Step, XmlError> {
    let err = |kind, offset| Err(XmlError { kind, offset });
    let Some(&first) = input.first() else {
        return Ok(Step::Partial);
    };
    if first != b'<' {
        let Some(end) = input.iter().position(|&b| b == b'<') else {
            if input.len() > MAX_TEXT_BYTES {
                return err(XmlErrorKind::TextTooLong, 0);
            }
            return Ok(Step::Partial);
        };
        if end > MAX_TEXT_BYTES {
            return err(XmlErrorKind::TextTooLong, 0);
        }
        let text = decode(&input[..end]).map_err(|(kind, at)| XmlError { kind, offset: at })?;
        return Ok(Step::Token(Token::Text(text), end));
    }
    let rest = &input[1..];
    if rest.is_empty() {
        return Ok(Step::Partial);
    }
    match rest[0] {
        b'?' => Ok(skip_until(input, 2, b"?>")),
        b'!' => {
            if b"!--".starts_with(&rest[..rest.len().min(3)]) && rest.len() < 3 {
                return Ok(Step::Partial);
            }
            if rest.starts_with(b"!--") {
                return Ok(skip_until(input, 4, b"-->"));
            }
            const CDATA: &[u8] = b"![CDATA[";
            if rest.len() < CDATA.len() && CDATA.starts_with(rest) {
                return Ok(Step::Partial);
            }
            if rest.starts_with(CDATA) {
                let start = 1 + CDATA.len();
                return match find(&input[start..], b"]]>") {
                    Some(n) if n > MAX_TEXT_BYTES => err(XmlErrorKind::TextTooLong, 0),
                    Some(n) => {
                        let text = std::str::from_utf8(&input[start..start + n])
                            .map_err(|_| XmlError {
                                kind: XmlErrorKind::NotUtf8,
                                offset: 0,
                            })?
                            .to_owned();
                        Ok(Step::Token(Token::Text(text), start + n + 3))
                    }
                    None if input.len() - start > MAX_TEXT_BYTES => {
                        err(XmlErrorKind::TextTooLong, 0)
                    }
                    None => Ok(Step::Partial),
                };
            }
            err(XmlErrorKind::Declaration, 0)
        }
        b'/' => {
            let Some(close) = input
                .iter()
                .take(MAX_NAME_BYTES + 4)
                .position(|&b| b == b'>')
            else {
                if input.len() > MAX_NAME_BYTES + 3 {
                    return err(XmlErrorKind::NameTooLong, 0);
                }
                return Ok(Step::Partial);
            };
            let name = trim_end(&input[2..close]);
            if !valid_name(name) {
                return err(XmlErrorKind::MalformedTag, 0);
            }
            let name = utf8(name)?;
            Ok(Step::Token(Token::End { name }, close + 1))
        }
        _ => start_tag(input),
    }
}

/// Reads a start tag (`input` starts with `<` and a name's first byte).
fn start_tag(input: &[u8]) -> Result<Step, XmlError> {
    let malformed = |at| {
        Err(XmlError {
            kind: XmlErrorKind::MalformedTag,
            offset: at,
        })
    };
    let mut state = TagState::Name;
    let mut name_end = 0;
    let mut attribute_name = 1..1;
    let mut value_start = 0;
    let mut attributes: Vec<Attribute> = Vec::new();
    for (at, &byte) in input.iter().enumerate().skip(1) {
        if at > MAX_TAG_BYTES {
            return Err(XmlError {
                kind: XmlErrorKind::TextTooLong,
                offset: 0,
            });
        }
        let space = byte.is_ascii_whitespace();
        state = match state {
            TagState::Name if space || byte == b'/' || byte == b'>' => {
                name_end = at;
                if !valid_name(&input[1..at]) {
                    return malformed(at);
                }
                match byte {
                    b'/' => TagState::Slash,
                    b'>' => return finish_tag(input, name_end, attributes, false, at),
                    _ => TagState::Between,
                }
            }
            TagState::Name => TagState::Name,
            TagState::Between if space => TagState::Between,
            TagState::Between if byte == b'/' => TagState::Slash,
            TagState::Between if byte == b'>' => {
                return finish_tag(input, name_end, attributes, false, at)
            }
            TagState::Between if is_name_byte(byte) => {
                attribute_name = at..at;
                TagState::AttributeName
            }
            TagState::Between => return malformed(at),
            TagState::AttributeName if is_name_byte(byte) => TagState::AttributeName,
            TagState::AttributeName | TagState::BeforeEquals => {
                if state == TagState::AttributeName {
                    attribute_name.end = at;
                }
                match byte {
                    b'=' => TagState::BeforeValue,
                    _ if space => TagState::BeforeEquals,
                    _ => return malformed(at),
                }
            }
            TagState::BeforeValue if space => TagState::BeforeValue,
            TagState::BeforeValue if byte == b'"' || byte == b'\'' => {
                value_start = at + 1;
                TagState::Value(byte)
            }
            TagState::BeforeValue => return malformed(at),
            TagState::Value(quote) if byte == quote => {
                if at - value_start > MAX_TEXT_BYTES {
                    return Err(XmlError {
                        kind: XmlErrorKind::TextTooLong,
                        offset: value_start,
                    });
                }
                let name = &input[attribute_name.clone()];
                if name.len() > MAX_NAME_BYTES {
                    return Err(XmlError {
                        kind: XmlErrorKind::NameTooLong,
                        offset: attribute_name.start,
                    });
                }
                let name = utf8(name)?;
                if attributes.iter().any(|a| a.name == name) {
                    return Err(XmlError {
                        kind: XmlErrorKind::DuplicateAttribute,
                        offset: attribute_name.start,
                    });
                }
                if attributes.len() == MAX_ATTRIBUTES {
                    return Err(XmlError {
                        kind: XmlErrorKind::TooManyAttributes,
                        offset: attribute_name.start,
                    });
                }
                let value = decode(&input[value_start..at]).map_err(|(kind, offset)| XmlError {
                    kind,
                    offset: value_start + offset,
                })?;
                attributes.push(Attribute { name, value });
                TagState::Between
            }
            TagState::Value(_) if byte == b'<' => return malformed(at),
            TagState::Value(quote) => TagState::Value(quote),
            TagState::Slash if byte == b'>' => {
                return finish_tag(input, name_end, attributes, true, at)
            }
            TagState::Slash => return malformed(at),
        };
        // A name is checked for length as it grows.
        let growing = match state {
            TagState::Name => at,
            TagState::AttributeName => at - attribute_name.start,
            _ => 0,
        };
        if growing > MAX_NAME_BYTES {
            return Err(XmlError {
                kind: XmlErrorKind::NameTooLong,
                offset: 0,
            });
        }
    }
    Ok(Step::Partial)
}

fn finish_tag(
    input: &[u8],
    name_end: usize,
    attributes: Vec<Attribute>,
    empty: bool,
    close: usize,
) -> Result<Step, XmlError> {
    let name = utf8(&input[1..name_end])?;
    let token = Token::Start {
        name,
        attributes,
        empty,
    };
    Ok(Step::Token(token, close + 1))
}

/// Skips a comment or processing instruction from `input`'s start to the
/// end of `close`, searched for from `from`.
fn skip_until(input: &[u8], from: usize, close: &[u8]) -> Step {
    match input.get(from..).and_then(|rest| find(rest, close)) {
        Some(n) => Step::Skipped(from + n + close.len()),
        None => Step::Partial,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// A byte that may be part of a name: anything but white space and the
/// bytes that end or delimit one (non-ASCII bytes of UTF-8 names pass).
fn is_name_byte(byte: u8) -> bool {
    !byte.is_ascii_whitespace() && !b"<>/=\"'&!?".contains(&byte)
}

fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.iter().all(|&b| is_name_byte(b))
        && !name[0].is_ascii_digit()
        && !matches!(name[0], b'-' | b'.')
}

fn utf8(bytes: &[u8]) -> Result<String, XmlError> {
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| XmlError {
            kind: XmlErrorKind::NotUtf8,
            offset: 0,
        })
}

/// Replaces the entities and character references of `raw`; an error
/// carries its offset in `raw`.
fn decode(raw: &[u8]) -> Result<String, (XmlErrorKind, usize)> {
    let text = std::str::from_utf8(raw).map_err(|e| (XmlErrorKind::NotUtf8, e.valid_up_to()))?;
    if !text.contains('&') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut at = 0;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        at += amp;
        rest = &rest[amp + 1..];
        // The longest reference is `&#x10FFFF;` (a name may be no longer).
        let Some(semi) = rest.get(..rest.len().min(10)).and_then(|r| r.find(';')) else {
            return Err((XmlErrorKind::BareAmpersand, at));
        };
        let reference = &rest[..semi];
        let c = match reference {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => match reference.strip_prefix('#') {
                Some(number) => {
                    let code = match number.strip_prefix('x') {
                        Some(hex) => u32::from_str_radix(hex, 16),
                        None => number.parse(),
                    };
                    match code.ok().filter(|&c| c != 0).and_then(char::from_u32) {
                        Some(c) if !number.starts_with(['+', '-']) => c,
                        _ => return Err((XmlErrorKind::BadCharacterReference, at)),
                    }
                }
                None => return Err((XmlErrorKind::UnknownEntity, at)),
            },
        };
        out.push(c);
        rest = &rest[semi + 1..];
        at += semi + 2;
    }
    out.push_str(rest);
    Ok(out)
}

/// An element of the tree, its name resolved against the namespace
/// declarations in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The namespace its prefix (or the default namespace) names.
    pub namespace: Option<String>,
    /// Its name less the prefix.
    pub local: String,
    /// As written; `xmlns` declarations included.
    pub attributes: Vec<Attribute>,
    /// Its child elements, in order.
    pub children: Vec<Element>,
    /// Its own text (not its children's), concatenated.
    pub text: String,
}

impl Element {
    /// The value of the unprefixed attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    }
}

/// An element being read: its namespace declarations, and its name as
/// written, for its end tag.
struct Open {
    element: Element,
    written: String,
    /// (prefix, namespace) declared here; `""` is the default namespace.
    declared: Vec<(String, String)>,
}

/// Reads a whole document into its root element.
pub fn parse_document(document: &[u8]) -> Result<Element, XmlError> {
    let mut open: Vec<Open> = Vec::new();
    let mut root: Option<Element> = None;
    let mut at = 0;
    // A byte order mark may start a document.
    if document.starts_with(b"\xEF\xBB\xBF") {
        at = 3;
    }
    loop {
        let rest = &document[at..];
        let step = next_token(rest).map_err(|e| XmlError {
            kind: e.kind,
            offset: at + e.offset,
        })?;
        let error = |kind| XmlError { kind, offset: at };
        let used = match step {
            Step::Partial => {
                if !open.is_empty() || !rest.iter().all(u8::is_ascii_whitespace) {
                    return Err(error(XmlErrorKind::Truncated));
                }
                return root.ok_or(error(XmlErrorKind::NotOneRoot));
            }
            Step::Skipped(used) => used,
            Step::Token(Token::Text(text), used) => {
                match open.last_mut() {
                    Some(parent) => {
                        if parent.element.text.len() + text.len() > MAX_TEXT_BYTES {
                            return Err(error(XmlErrorKind::TextTooLong));
                        }
                        parent.element.text.push_str(&text);
                    }
                    None if text.bytes().all(|b| b.is_ascii_whitespace()) => {}
                    None => return Err(error(XmlErrorKind::NotOneRoot)),
                }
                used
            }
            Step::Token(
                Token::Start {
                    name,
                    attributes,
                    empty,
                },
                used,
            ) => {
                if root.is_some() {
                    return Err(error(XmlErrorKind::NotOneRoot));
                }
                if open.len() == MAX_DEPTH {
                    return Err(error(XmlErrorKind::TooDeep));
                }
                let declared: Vec<(String, String)> = attributes
                    .iter()
                    .filter_map(|a| match a.name.as_str() {
                        "xmlns" => Some((String::new(), a.value.clone())),
                        n => n
                            .strip_prefix("xmlns:")
                            .map(|p| (p.to_owned(), a.value.clone())),
                    })
                    .collect();
                let (prefix, local) = match name.split_once(':') {
                    Some((prefix, local)) => (prefix, local),
                    None => ("", name.as_str()),
                };
                let namespace = declared
                    .iter()
                    .rev()
                    .chain(open.iter().rev().flat_map(|o| o.declared.iter().rev()))
                    .find(|(p, _)| p == prefix)
                    .map(|(_, ns)| ns.clone());
                if namespace.is_none() && !prefix.is_empty() {
                    return Err(error(XmlErrorKind::UnboundPrefix));
                }
                let element = Element {
                    // `xmlns=""` undeclares the default namespace.
                    namespace: namespace.filter(|ns| !ns.is_empty()),
                    local: local.to_owned(),
                    attributes,
                    children: Vec::new(),
                    text: String::new(),
                };
                let opened = Open {
                    element,
                    written: name,
                    declared,
                };
                if empty {
                    close(&mut open, &mut root, opened.element);
                } else {
                    open.push(opened);
                }
                used
            }
            Step::Token(Token::End { name }, used) => {
                let Some(closed) = open.pop() else {
                    return Err(error(XmlErrorKind::MismatchedEnd));
                };
                if closed.written != name {
                    return Err(error(XmlErrorKind::MismatchedEnd));
                }
                close(&mut open, &mut root, closed.element);
                used
            }
        };
        at += used;
    }
}

/// `element` is complete: a child of the open element, or the root.
fn close(open: &mut [Open], root: &mut Option<Element>, element: Element) {
    match open.last_mut() {
        Some(parent) => parent.element.children.push(element),
        None => *root = Some(element),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(document: &str) -> XmlErrorKind {
        parse_document(document.as_bytes())
            .expect_err("refused")
            .kind
    }

    #[test]
    fn elements_attributes_and_text_are_read() {
        let root = parse_document(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- a comment -->\n\
              <a x='1' y=\"&lt;&amp;&#65;&#x42;\"><b/>one<![CDATA[<two>]]>\
              <c >three</c ></a>\n",
        )
        .expect("parsed");
        assert_eq!(root.local, "a");
        assert_eq!(root.attribute("x"), Some("1"));
        assert_eq!(root.attribute("y"), Some("<&AB"));
        assert_eq!(root.text, "one<two>");
        let names: Vec<&str> = root.children.iter().map(|c| c.local.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(root.children[1].text, "three");
    }

    #[test]
    fn namespaces_resolve_default_and_prefixed_names() {
        let root =
            parse_document(b"<m:a xmlns:m='urn:m' xmlns='urn:d'><b/><m:c/><d xmlns=''/></m:a>")
                .expect("parsed");
        assert_eq!(root.namespace.as_deref(), Some("urn:m"));
        let spaces: Vec<Option<&str>> = root
            .children
            .iter()
            .map(|c| c.namespace.as_deref())
            .collect();
        assert_eq!(spaces, [Some("urn:d"), Some("urn:m"), None]);
        assert_eq!(kind("<x:a/>"), XmlErrorKind::UnboundPrefix);
    }

    #[test]
    fn declarations_and_unknown_entities_are_refused() {
        let bomb = "<!DOCTYPE a [<!ENTITY b \"bbbbbbbb\"><!ENTITY c \"&b;&b;&b;\">]><a>&c;</a>";
        assert_eq!(kind(bomb), XmlErrorKind::Declaration);
        assert_eq!(kind("<!ENTITY x 'y'><a/>"), XmlErrorKind::Declaration);
        assert_eq!(kind("<a>&c;</a>"), XmlErrorKind::UnknownEntity);
        assert_eq!(kind("<a b='&nbsp;'/>"), XmlErrorKind::UnknownEntity);
        assert_eq!(kind("<a>&#0;</a>"), XmlErrorKind::BadCharacterReference);
        assert_eq!(kind("<a>&#xD800;</a>"), XmlErrorKind::BadCharacterReference);
        assert_eq!(kind("<a>a & b</a>"), XmlErrorKind::BareAmpersand);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let ok = "<a>".repeat(MAX_DEPTH) + &"</a>".repeat(MAX_DEPTH);
        assert!(parse_document(ok.as_bytes()).is_ok());
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert_eq!(kind(&deep), XmlErrorKind::TooDeep);
        // Refused at the limit, not after reading a million opens.
        let mut million = "<a>".repeat(1_000_000);
        million.truncate(million.len() - 1);
        assert_eq!(kind(&million), XmlErrorKind::TooDeep);
    }

    #[test]
    fn huge_attributes_names_and_texts_are_refused() {
        let value = "v".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            kind(&format!("<a b='{value}'/>")),
            XmlErrorKind::TextTooLong
        );
        assert_eq!(kind(&format!("<a>{value}</a>")), XmlErrorKind::TextTooLong);
        assert_eq!(
            kind(&format!("<a><![CDATA[{value}]]></a>")),
            XmlErrorKind::TextTooLong
        );
        // Many runs of text in one element add up.
        let half = "v".repeat(MAX_TEXT_BYTES / 2 + 1);
        assert_eq!(
            kind(&format!("<a>{half}<!---->{half}</a>")),
            XmlErrorKind::TextTooLong
        );
        let name = "n".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(kind(&format!("<{name}/>")), XmlErrorKind::NameTooLong);
        assert_eq!(kind(&format!("<a {name}='1'/>")), XmlErrorKind::NameTooLong);
        let many: String = (0..=MAX_ATTRIBUTES).map(|i| format!(" a{i}='1'")).collect();
        assert_eq!(
            kind(&format!("<a{many}/>")),
            XmlErrorKind::TooManyAttributes
        );
        assert_eq!(kind("<a b='1' b='2'/>"), XmlErrorKind::DuplicateAttribute);
    }

    #[test]
    fn malformed_documents_are_refused() {
        assert_eq!(kind(""), XmlErrorKind::NotOneRoot);
        assert_eq!(kind("text<a/>"), XmlErrorKind::NotOneRoot);
        assert_eq!(kind("<a/><b/>"), XmlErrorKind::NotOneRoot);
        assert_eq!(kind("<a><b></a></b>"), XmlErrorKind::MismatchedEnd);
        assert_eq!(kind("<a>"), XmlErrorKind::Truncated);
        assert_eq!(kind("<a b='1"), XmlErrorKind::Truncated);
        assert_eq!(kind("<a b=1/>"), XmlErrorKind::MalformedTag);
        assert_eq!(kind("<a b='<'/>"), XmlErrorKind::MalformedTag);
        assert_eq!(kind("<a b/>"), XmlErrorKind::MalformedTag);
        assert_eq!(kind("<1a/>"), XmlErrorKind::MalformedTag);
    }

    #[test]
    fn a_token_cut_short_is_partial_not_an_error() {
        let whole = b"<url priority=\"1\">http://x/&amp;</url>";
        for cut in 1..18 {
            assert_eq!(next_token(&whole[..cut]), Ok(Step::Partial), "{cut}");
        }
        assert!(matches!(
            next_token(&whole[..18]),
            Ok(Step::Token(Token::Start { .. }, 18))
        ));
        assert_eq!(next_token(b"<!-- x -"), Ok(Step::Partial));
        assert_eq!(next_token(b"<![CDA"), Ok(Step::Partial));
        assert_eq!(next_token(b"<!"), Ok(Step::Partial));
    }
}
