//! Saving a torrent: the builder `Client::torrent` returns, which reads
//! the `.torrent` (a file or a URL), opens its files under a directory,
//! continues an earlier run, joins the swarm through the trackers and
//! returns once every piece is verified.
//!
//! ```no_run
//! use partfetch::{Client, Progress};
//!
//! let client = Client::new()?;
//! let saved = client
//!     .torrent("debian.iso.torrent")
//!     .max_peers(30)
//!     .on_progress(|p: &Progress| eprintln!("{} of {:?} bytes, {:?}", p.done, p.total, p.peers))
//!     .to_dir("downloads")?;
//! println!("{} bytes in {:?}", saved.bytes, saved.path);
//! # Ok::<(), partfetch::Error>(())
//! ```

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::progress::{Meter, OnProgress};
use super::{Progress, Saved};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;
use crate::fetch::Context;
use crate::stream::Stream;
use crate::torrent::swarm::session::{Input, Note, Observer, Session, Status};
use crate::torrent::swarm::{connection::Setup, Controller, DEFAULT_MAX_PEERS};
use crate::torrent::tracker::{AnnounceStats, Announcer, Tiers};
use crate::torrent::{
    state_path, wire, Announce, AnnounceEvent, Checkpoint, Metainfo, ResumeState, ResumedFrom,
    TorrentStore, MAX_METAINFO_BYTES,
};

/// A torrent to download, and how; [`to_dir`](TorrentDownload::to_dir)
/// runs it.
#[must_use = "a torrent download does nothing until to_dir runs it"]
pub struct TorrentDownload<'a> {
    ctx: Context,
    source: String,
    /// The `.torrent`'s bytes, when read already (from a URL that served
    /// one).
    metainfo: Option<Vec<u8>>,
    max_peers: usize,
    on_progress: Option<OnProgress<'a>>,
}

impl<'a> TorrentDownload<'a> {
    pub(crate) fn new(ctx: Context, source: &str) -> TorrentDownload<'a> {
        TorrentDownload {
            ctx,
            source: source.to_owned(),
            metainfo: None,
            max_peers: DEFAULT_MAX_PEERS,
            on_progress: None,
        }
    }

    /// The torrent `stream` serves (the URL `source` answered with a
    /// `.torrent`), read at once.
    pub(crate) fn from_stream(
        ctx: Context,
        stream: Stream,
        source: &str,
    ) -> Result<TorrentDownload<'a>> {
        let bytes = read_bounded(stream, source)?;
        let mut download = TorrentDownload::new(ctx, source);
        download.metainfo = Some(bytes);
        Ok(download)
    }

    pub(crate) fn with_progress(mut self, on_progress: Option<OnProgress<'a>>) -> Self {
        self.on_progress = on_progress;
        self
    }

    /// Peers connected at once at most (default 50).
    pub fn max_peers(mut self, peers: usize) -> Self {
        self.max_peers = peers.max(1);
        self
    }

    /// Calls `callback` as the download goes, at most ten times a second
    /// and once at the end; [`Progress::peers`] counts the swarm.
    pub fn on_progress(mut self, callback: impl FnMut(&Progress) + Send + 'a) -> Self {
        self.on_progress = Some(Box::new(callback));
        self
    }

    /// Downloads the torrent's files into `dir`: `dir/NAME` for a
    /// single-file torrent, `dir/NAME/…` for several. Returns once every
    /// piece is verified; a run stopped before (killed, or failed) is
    /// continued from its control file, `dir/NAME.partfetch.state`, or
    /// from the data found on disk.
    pub fn to_dir(self, dir: impl AsRef<Path>) -> Result<Saved> {
        let meta = match &self.metainfo {
            Some(bytes) => parse(bytes, &self.source)?,
            None => load(&self.ctx, &self.source)?,
        };
        let meta = Arc::new(meta);
        // Before any file is made.
        let tiers = Tiers::of(&meta);
        if tiers.is_empty() {
            return Err(Error::new(
                ErrorKind::Torrent,
                "names no tracker: peers are found through trackers only (no DHT, no \
                 peer exchange, no web seeds yet)",
            )
            .with_subject(&self.source));
        }
        let store = Arc::new(TorrentStore::open(Arc::clone(&meta), dir.as_ref())?);
        let root = store.root().to_path_buf();
        let control = state_path(dir.as_ref(), &meta);
        let layout = meta.layout();
        let cancel = self.ctx.cancel_handle();
        let resumed = ResumeState::for_torrent(&store, &control, &cancel, &|_| {})?;
        let have = resumed.have;
        let mut meter = Meter::new(self.on_progress);
        meter.set_total(Some(meta.length()));
        let resumed_from = layout.bytes_in(&have);
        meter.skip(resumed_from);
        if have.count() > 0 {
            self.ctx.emit(Event::TorrentResumed {
                path: root.clone(),
                pieces: have.count(),
                bytes: resumed_from,
                checked: resumed.from == ResumedFrom::Check,
            });
        }
        let listener =
            TcpListener::bind(("0.0.0.0", 0)).map_err(|e| Error::io(e, "a port for peers"))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io(e, "a port for peers"))?
            .port();
        let peer_id = wire::new_peer_id();
        let pieces = u32::try_from(layout.pieces())
            .map_err(|_| Error::new(ErrorKind::Torrent, "too many pieces"))?;
        let controller = Controller::new(layout, &have, self.max_peers);
        let setup = Setup::new(meta.info_hash(), peer_id, pieces, Some(port));
        let checkpoint = Checkpoint::new(control, &meta, have, Instant::now());
        let mut session = Session::new(controller, Arc::clone(&store), setup, checkpoint);
        session.listen(listener)?;
        let stats = Arc::new(AnnounceStats::new(meta.length() - resumed_from));
        let template = Announce {
            info_hash: meta.info_hash(),
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: meta.length() - resumed_from,
            event: AnnounceEvent::Started,
            numwant: Some(50),
            key: (crate::util::random::u64() >> 32) as u32,
        };
        let peers = session.sender();
        let announcer = Announcer::start(
            self.ctx.clone(),
            tiers,
            template,
            Arc::clone(&stats),
            move |found: Vec<crate::torrent::tracker::Peer>| {
                let _ = peers.send(Input::Peers(found.into_iter().map(|p| p.addr).collect()));
            },
        )?;
        let mut observer = Watcher {
            meter: &mut meter,
            ctx: &self.ctx,
            announcer: &announcer,
            stats: &stats,
            counted: resumed_from,
        };
        let ran = session.run(&mut observer, &|| cancel.is_cancelled());
        drop(session);
        if ran.is_ok() && resumed_from < meta.length() {
            announcer.completed();
        }
        announcer.stop();
        meter.finish();
        ran?;
        let files = meta.files().iter().filter(|f| !f.is_pad()).count() as u64;
        let progress = meter.progress();
        Ok(Saved {
            path: Some(root),
            bytes: progress.done,
            resumed_from,
            sha256: None,
            files: Some(files),
        })
    }
}

/// The session's observer: progress to the caller's meter, needs to the
/// announcer, notes to the client's events.
struct Watcher<'m, 'a> {
    meter: &'m mut Meter<'a>,
    ctx: &'m Context,
    announcer: &'m Announcer,
    stats: &'m AnnounceStats,
    /// Bytes already told to the announcer (an earlier run's counted, so
    /// that `downloaded` is this run's only).
    counted: u64,
}

impl Observer for Watcher<'_, '_> {
    fn status(&mut self, status: &Status) {
        self.meter.set_peers(status.peers);
        self.meter.reach(status.bytes);
        self.stats
            .set_left(status.total.saturating_sub(status.bytes));
        if status.bytes > self.counted {
            self.stats.add_downloaded(status.bytes - self.counted);
            self.counted = status.bytes;
        }
    }

    fn want_peers(&mut self) {
        self.announcer.request_more();
    }

    fn note(&mut self, note: Note) {
        match note {
            Note::PieceFailed(piece) => self.ctx.emit(Event::PieceFailed { piece }),
            Note::PeerBanned(addr) => self.ctx.emit(Event::PeerBanned { addr }),
        }
    }
}

/// Reads the metainfo from a file, or from a URL through the client.
fn load(ctx: &Context, source: &str) -> Result<Metainfo> {
    let bytes = if is_url(source) {
        read_bounded(crate::open::open_mirrored(ctx, source, &[])?, source)?
    } else {
        let file = std::fs::File::open(source).map_err(|e| Error::io(e, source))?;
        read_bounded(file, source)?
    };
    parse(&bytes, source)
}

/// Reads a `.torrent` of at most [`MAX_METAINFO_BYTES`] (and one more
/// byte, so that a longer one is told apart and refused by the parser).
fn read_bounded(from: impl Read, source: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    from.take(MAX_METAINFO_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(e, source))?;
    Ok(bytes)
}

fn parse(bytes: &[u8], source: &str) -> Result<Metainfo> {
    Metainfo::parse(bytes)
        .map_err(|e| Error::new(ErrorKind::Torrent, e.to_string()).with_subject(source))
}

/// Whether a `Content-Type` says "a `.torrent`".
pub(crate) fn is_torrent_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| {
        let essence = t.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/x-bittorrent")
    })
}

/// Whether `source` is a URL rather than a file's path.
fn is_url(source: &str) -> bool {
    let lower = source.get(..8).unwrap_or(source).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Whether `source` names a `.torrent`: a path or URL whose path ends so.
pub fn names_a_torrent(source: &str) -> bool {
    let path = source.split(['?', '#']).next().unwrap_or(source);
    path.to_ascii_lowercase().ends_with(".torrent")
}
