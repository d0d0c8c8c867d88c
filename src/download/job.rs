//! One download as the builder described it: its URL and mirrors, the
//! digest it must have, its rate limit, whether it continues an earlier
//! run, and the client context it runs in.

use std::path::Path;

use crate::error::Result;
use crate::event::{Event, StartOver};
use crate::fetch::Context;
use crate::open;
use crate::stream::Stream;
use crate::url::Url;

/// Whether a download continues what an earlier run left beside its file
/// (`FILE.partfetch` and its control file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Resume {
    /// Continue when the earlier run's record matches this URL and the
    /// server's file is still the same; otherwise start over (with an
    /// [`Event::StartingOver`](crate::Event::StartingOver)).
    #[default]
    IfPossible,
    /// Continue, or fail with [`ErrorKind::ResumeMismatch`](crate::ErrorKind::ResumeMismatch) and leave the
    /// earlier run's files as they are.
    Require,
    /// Start over, whatever is there.
    Never,
}

// Require with an output that cannot be resumed (a writer, a device, a
// file sequence) is ErrorKind::InvalidInput: the request itself is one no
// run could honour.

/// What a download is asked to do, as the builder set it.
#[derive(Clone)]
pub(crate) struct Job {
    pub ctx: Context,
    pub url: String,
    pub mirrors: Vec<String>,
    pub sha256: Option<[u8; 32]>,
    pub limit_rate: Option<u64>,
    pub resume: Resume,
    /// A URL that serves a `.torrent` is downloaded as the torrent.
    pub follow_torrent: bool,
    /// A URL that serves a Metalink document is downloaded as its files.
    #[cfg(feature = "metalink")]
    pub follow_metalink: bool,
    /// The digests of the resource's pieces (a Metalink document's),
    /// checked as they arrive when it is fetched in pieces.
    pub piece_hashes: Option<std::sync::Arc<crate::pieces::PieceHashes>>,
}

/// What a save ends with: the digest checked, if one was asked for.
pub(crate) type Digest = Option<[u8; 32]>;

impl Job {
    pub(crate) fn open(&self) -> Result<Stream> {
        let mirrors: Vec<&str> = self.mirrors.iter().map(String::as_str).collect();
        open::open_mirrored(&self.ctx, &self.url, &mirrors)
    }

    /// The URL as messages show it: without the credentials it may carry.
    pub(crate) fn shown_url(&self) -> String {
        Url::parse(&self.url).map_or_else(|_| self.url.clone(), |url| url.redacted().to_string())
    }

    /// The earlier run's bytes of `path` cannot be continued: the download
    /// starts over, and says so.
    pub(crate) fn starting_over(&self, path: &Path, why: StartOver) {
        self.ctx.emit(Event::StartingOver {
            path: path.to_owned(),
            url: self.shown_url(),
            why,
        });
    }

    /// Why the earlier run's bytes cannot be continued at their offset.
    pub(crate) fn changed(&self) -> String {
        format!(
            "{} changed since the last run (or its server ignores Range)",
            self.shown_url()
        )
    }

    /// Why the parts an earlier run completed cannot be skipped.
    pub(crate) fn no_longer_lists(&self) -> String {
        format!(
            "{} no longer lists what the last run downloaded",
            self.shown_url()
        )
    }

    /// The earlier run's bytes are continued with no way to tell whether
    /// the server's file is still the one they came from.
    pub(crate) fn resumed_unverified(&self, path: &Path) {
        self.ctx.emit(Event::ResumedUnverified {
            path: path.to_owned(),
            url: self.shown_url(),
        });
    }
}
