//! The one error type of the crate.
//!
//! An [`Error`] carries an [`ErrorKind`] a caller can match on, the URL (or
//! path) it concerns, a sentence for people, and — when a part failed on every
//! alternative — the error of each alternative. The kind decides the exit code
//! of the command-line tool; the text is never parsed.

use std::fmt;
use std::sync::Arc;

/// What went wrong, coarse enough to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered 404 or 410.
    NotFound,
    /// The server answered another status that is not a success.
    Status(u16),
    /// Name resolution, connecting, a reset, or a timeout.
    Network,
    /// The TLS handshake or the TLS stream failed (certificate, protocol).
    Tls,
    /// The server broke HTTP/1.1: a malformed head, bad framing, a short body.
    Protocol,
    /// A redirect could not be followed: too many hops, a loop, a bad target.
    Redirect,
    /// A URL that does not parse, or that this client cannot fetch.
    Url,
    /// A `.parts` manifest is malformed, loops, or nests too deep.
    Manifest,
    /// A file sequence is truncated or claims more than allowed.
    Sequence,
    /// A `.torrent` file is malformed or names a path outside its
    /// directory, or its swarm cannot be joined.
    Torrent,
    /// A Metalink document is malformed, hostile (entity declarations,
    /// deep nesting, huge values), or names a path outside its directory.
    Metalink,
    /// Bytes do not match the size or digest they were promised to have.
    Integrity,
    /// A local file or stream could not be read or written.
    Io,
    /// A configured limit was exceeded (the message names the limit).
    Limit,
    /// Something the caller gave is unusable: a header, a proxy setting, a
    /// validator, pieces beyond the length they were said to be of.
    InvalidInput,
    /// The call was stopped through the client's [`Cancel`](crate::Cancel).
    Cancelled,
    /// What an earlier run left cannot be continued: the resource changed,
    /// its server no longer honours `Range`, the manifests no longer list
    /// the parts it completed, or there is nothing to continue. Only
    /// returned where resuming was required
    /// ([`Resume::Require`](crate::Resume::Require)); otherwise the
    /// download starts over.
    ResumeMismatch,
}

/// An error with its kind, the URL or path it concerns, and its causes.
///
/// Displayed, it is the message and the subject (`not found (404): URL`),
/// then one indented line per cause, each with its own: what a terminal
/// shows. A one-line label is [`Error::message`] and [`Error::subject`];
/// the causes are [`Error::causes`], one per alternative tried.
/// [`std::error::Error::source`] is the underlying error of this one
/// (an `io::Error` for a local file, a TLS error), where there is one.
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

/// Boxed, so that a `Result` of the crate is as small as its value: errors
/// travel through every layer, and are rare.
#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    subject: Option<String>,
    message: String,
    causes: Vec<Error>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A failure that may pass, worth another attempt after a while: a
    /// connection reset or timeout, a malformed answer, 408, 429, 500,
    /// 502, 503, 504. Not found, other statuses, TLS, integrity and local
    /// errors are permanent.
    pub fn is_transient(&self) -> bool {
        match self.0.kind {
            ErrorKind::Network | ErrorKind::Protocol => true,
            ErrorKind::Status(code) => matches!(code, 408 | 429 | 500 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// An error of `kind` described by `message`, about no particular URL.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            kind,
            subject: None,
            message: message.into(),
            causes: Vec::new(),
            source: None,
        }))
    }

    /// Keeps `source` as the underlying error ([`std::error::Error::source`]).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.0.source = Some(Arc::new(source));
        self
    }

    /// The kind of the underlying `io::Error`, when there is one: a
    /// program tells a reader that went away (`BrokenPipe`) or a full disk
    /// from other local failures.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        let source = self.0.source.as_deref()?;
        let io: &(dyn std::error::Error + 'static) = source;
        io.downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
    }

    /// Names the URL or path this error concerns, unless one is named
    /// already. A subject longer than 256 bytes (a hostile URL of 60 KB) is
    /// kept as its first 200 bytes and its length.
    pub fn with_subject(mut self, subject: impl fmt::Display) -> Error {
        if self.0.subject.is_none() {
            self.0.subject = Some(crate::util::quote::cut(&subject.to_string()));
        }
        self
    }

    /// Attaches the errors that led to this one (one per alternative tried).
    pub fn with_causes(mut self, causes: Vec<Error>) -> Error {
        self.0.causes = causes;
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The URL or path concerned, when known.
    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }

    /// The description, without the subject.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The errors of each alternative, when several were tried.
    pub fn causes(&self) -> &[Error] {
        &self.0.causes
    }

    /// An error for a local file or stream, naming its path.
    pub fn io(err: std::io::Error, path: impl fmt::Display) -> Error {
        Error::new(ErrorKind::Io, err.to_string())
            .with_subject(path)
            .with_source(err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)?;
        if let Some(subject) = &self.0.subject {
            write!(f, ": {subject}")?;
        }
        for cause in &self.0.causes {
            write!(f, "\n  - {}", cause.to_string().replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let source: &(dyn std::error::Error + 'static) = self.0.source.as_deref()?;
        Some(source)
    }
}

impl From<Error> for std::io::Error {
    fn from(err: Error) -> std::io::Error {
        let kind = match err.0.kind {
            ErrorKind::NotFound => std::io::ErrorKind::NotFound,
            ErrorKind::Network => std::io::ErrorKind::ConnectionAborted,
            ErrorKind::Protocol
            | ErrorKind::Manifest
            | ErrorKind::Sequence
            | ErrorKind::Torrent
            | ErrorKind::Metalink => std::io::ErrorKind::InvalidData,
            _ => std::io::ErrorKind::Other,
        };
        std::io::Error::new(kind, err)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_subject_and_every_cause() {
        let err = Error::new(ErrorKind::Manifest, "every alternative of part 2 failed")
            .with_subject("http://h/a.parts")
            .with_causes(vec![
                Error::new(ErrorKind::NotFound, "not found (404)").with_subject("http://a/x"),
                Error::new(ErrorKind::Network, "connection refused").with_subject("http://b/x"),
            ]);
        let text = err.to_string();
        assert!(text.starts_with("every alternative of part 2 failed: http://h/a.parts"));
        assert!(text.contains("\n  - not found (404): http://a/x"));
        assert!(text.contains("\n  - connection refused: http://b/x"));
    }

    #[test]
    fn a_local_error_keeps_its_io_error_as_source() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        let err = Error::io(io, "standard output");
        assert_eq!(err.io_kind(), Some(std::io::ErrorKind::BrokenPipe));
        let source = std::error::Error::source(&err).expect("a source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
        assert_eq!(Error::new(ErrorKind::Io, "x").io_kind(), None);
    }

    #[test]
    fn subject_is_not_overwritten_by_outer_layers() {
        let err = Error::new(ErrorKind::Network, "reset")
            .with_subject("http://inner/")
            .with_subject("http://outer/");
        assert_eq!(err.subject(), Some("http://inner/"));
    }
}
