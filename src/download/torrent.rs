//! Saving a torrent: the builder `Client::torrent` returns, which reads
//! the `.torrent` (a file or a URL), opens its files under a directory,
//! continues an earlier run, joins the swarm through the trackers and
//! returns once every piece is verified — or goes on uploading
//! ([`seed`](TorrentDownload::seed)); and seeding files already there
//! ([`seed_from`](TorrentDownload::seed_from)).
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

use std::cell::Cell;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::document;
use super::progress::{Meter, OnProgress};
use super::{Progress, Saved};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;
use crate::fetch::Context;
use crate::stream::Stream;
use crate::torrent::swarm::controller::Goal;
use crate::torrent::swarm::session::{Input, Note, Observer, Session, Status};
use crate::torrent::swarm::{connection::Setup, Controller, DEFAULT_MAX_PEERS};
use crate::torrent::tracker::{AnnounceStats, Announcer, Tiers};
use crate::torrent::{
    check_existing, state_path, wire, Announce, AnnounceEvent, Checkpoint, Metainfo, ResumeState,
    ResumedFrom, TorrentStore, MAX_METAINFO_BYTES,
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
    seed: bool,
    seed_ratio: Option<f64>,
    seed_time: Option<Duration>,
    listen_port: Option<u16>,
    max_upload_rate: Option<u64>,
}

/// The ports tried in turn for peers to dial, when none is given: the
/// range every client has used since the first one.
pub const LISTEN_PORTS: std::ops::RangeInclusive<u16> = 6881..=6889;

impl<'a> TorrentDownload<'a> {
    pub(crate) fn new(ctx: Context, source: &str) -> TorrentDownload<'a> {
        TorrentDownload {
            ctx,
            source: source.to_owned(),
            metainfo: None,
            max_peers: DEFAULT_MAX_PEERS,
            on_progress: None,
            seed: false,
            seed_ratio: None,
            seed_time: None,
            listen_port: None,
            max_upload_rate: None,
        }
    }

    /// The torrent `stream` serves (the URL `source` answered with a
    /// `.torrent`), read at once.
    pub(crate) fn from_stream(
        ctx: Context,
        stream: Stream,
        source: &str,
    ) -> Result<TorrentDownload<'a>> {
        let bytes = document::read_bounded(stream, source, MAX_METAINFO_BYTES)?;
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

    /// Once every piece is verified, goes on uploading to the swarm until
    /// the [seed ratio](Self::seed_ratio) or [seed
    /// time](Self::seed_time) is reached, or the client is cancelled
    /// (which then ends the run with success).
    pub fn seed(mut self) -> Self {
        self.seed = true;
        self
    }

    /// Seeds (see [`seed`](Self::seed)) until `ratio` times the torrent's
    /// length is uploaded, this run's downloading included.
    pub fn seed_ratio(mut self, ratio: f64) -> Self {
        self.seed = true;
        self.seed_ratio = Some(ratio);
        self
    }

    /// Seeds (see [`seed`](Self::seed)) for `time` after the download
    /// completes.
    pub fn seed_time(mut self, time: Duration) -> Self {
        self.seed = true;
        self.seed_time = Some(time);
        self
    }

    /// Peers dial us on `port` (IPv4 and IPv6); by default, the first free
    /// one of 6881–6889, or any.
    pub fn listen_port(mut self, port: u16) -> Self {
        self.listen_port = Some(port);
        self
    }

    /// Uploads at most `bytes_per_second` to all peers together.
    pub fn max_upload_rate(mut self, bytes_per_second: u64) -> Self {
        self.max_upload_rate = Some(bytes_per_second.max(1));
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
        let goal = match self.seed {
            true => Goal::DownloadThenSeed,
            false => Goal::Download,
        };
        self.run(dir.as_ref(), goal)
    }

    /// Seeds the torrent's files found under `dir` (`dir/NAME`, or
    /// `dir/NAME/…`), as they are: each piece is checked first, and only
    /// those that match are offered; nothing is downloaded, created or
    /// written. Runs until the [seed ratio](Self::seed_ratio) or [seed
    /// time](Self::seed_time) is reached, or the client is cancelled; then
    /// tells the trackers `stopped` and returns. A missing file, or data
    /// of which no piece matches, is an error naming it.
    pub fn seed_from(self, dir: impl AsRef<Path>) -> Result<Saved> {
        self.run(dir.as_ref(), Goal::Seed)
    }

    fn run(self, dir: &Path, goal: Goal) -> Result<Saved> {
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
        let cancel = self.ctx.cancel_handle();
        let control = state_path(dir, &meta);
        let _lock;
        let (store, have, checkpoint) = if goal == Goal::Seed {
            let store = TorrentStore::open_to_seed(Arc::clone(&meta), dir)?;
            let have = check_existing(&store, &cancel, &|_| {})?;
            if have.count() == 0 {
                return Err(Error::new(
                    ErrorKind::Torrent,
                    "no piece of the torrent matches the data there: nothing to seed",
                )
                .with_subject(store.root().display()));
            }
            if have.count() < meta.layout().pieces() {
                self.ctx.emit(Event::SeedingPart {
                    path: store.root().to_path_buf(),
                    pieces: have.count(),
                    of: meta.layout().pieces(),
                });
            }
            (Arc::new(store), have, None)
        } else {
            // Held until the swarm is done: a second process fails here.
            _lock = crate::torrent::DownloadLock::take(dir, &meta)?;
            let store = Arc::new(TorrentStore::open(Arc::clone(&meta), dir)?);
            let resumed = ResumeState::for_torrent(&store, &control, &cancel, &|_| {})?;
            let have = resumed.have;
            if have.count() > 0 {
                self.ctx.emit(Event::TorrentResumed {
                    path: store.root().to_path_buf(),
                    pieces: have.count(),
                    bytes: meta.layout().bytes_in(&have),
                    checked: resumed.from == ResumedFrom::Check,
                });
            }
            let checkpoint = Checkpoint::new(control, &meta, have.clone(), Instant::now());
            (store, have, Some(checkpoint))
        };
        let root = store.root().to_path_buf();
        let layout = meta.layout();
        let mut meter = Meter::new(self.on_progress);
        meter.set_total(Some(meta.length()));
        let resumed_from = layout.bytes_in(&have);
        meter.skip(resumed_from);
        let listener = bind_listener(self.listen_port)?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::io(e, "a port for peers"))?
            .port();
        let peer_id = wire::new_peer_id();
        let pieces = u32::try_from(layout.pieces())
            .map_err(|_| Error::new(ErrorKind::Torrent, "too many pieces"))?;
        let controller = Controller::new(layout, &have, self.max_peers).with_goal(goal);
        let setup = Setup::new(meta.info_hash(), peer_id, pieces, Some(port))
            .serving(Arc::clone(&store) as _, self.max_upload_rate);
        let mut session = Session::new(controller, Arc::clone(&store), setup, checkpoint);
        session.listen(listener)?;
        let left = meta.length() - resumed_from;
        let stats = Arc::new(AnnounceStats::new(left));
        let template = Announce {
            info_hash: meta.info_hash(),
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: AnnounceEvent::Started,
            numwant: Some(50),
            key: (crate::util::random::u64() >> 32) as u32,
        };
        let peers = session.sender();
        // The announcer keeps a cancel of its own: the user's, which ends
        // the swarm, must not keep `stopped` from being announced.
        let announcer = Announcer::start(
            self.ctx.with_cancel(crate::Cancel::new()),
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
            uploaded: 0,
            complete_at_start: resumed_from == meta.length(),
            goal,
        };
        let until = SeedUntil {
            ratio: self.seed_ratio,
            time: self.seed_time,
            length: meta.length(),
            since: Cell::new(None),
        };
        let ran = session.run(&mut observer, &|status| {
            let seeding = status.complete || goal == Goal::Seed;
            cancel.is_cancelled() || (seeding && until.reached(status.uploaded))
        });
        drop(session);
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
            already_complete: false,
        })
    }
}

/// When seeding ends: the first of a ratio uploaded and a time passed,
/// counted from the first call (made once seeding starts).
struct SeedUntil {
    ratio: Option<f64>,
    time: Option<Duration>,
    /// The torrent's length, which the ratio multiplies.
    length: u64,
    since: Cell<Option<Instant>>,
}

impl SeedUntil {
    /// Whether seeding, with `uploaded` bytes sent so far, is to end now.
    fn reached(&self, uploaded: u64) -> bool {
        let since = *self.since.get().get_or_insert(Instant::now());
        self.since.set(Some(since));
        let ratio = self
            .ratio
            .is_some_and(|r| uploaded as f64 >= r * self.length as f64);
        ratio || self.time.is_some_and(|t| since.elapsed() >= t)
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
    /// Bytes uploaded already told to the announcer.
    uploaded: u64,
    /// Every piece was there at the start: `completed` is never announced
    /// (BEP 3).
    complete_at_start: bool,
    /// What the swarm is for: whether it only uploads, now or once done.
    goal: Goal,
}

impl Observer for Watcher<'_, '_> {
    fn status(&mut self, status: &Status) {
        self.meter.set_peers(status.peers);
        let seeding = match self.goal {
            Goal::Download => false,
            Goal::DownloadThenSeed => status.complete,
            Goal::Seed => true,
        };
        self.meter.set_uploaded(status.uploaded, seeding);
        self.meter.reach(status.bytes);
        self.stats
            .set_left(status.total.saturating_sub(status.bytes));
        if status.bytes > self.counted {
            self.stats.add_downloaded(status.bytes - self.counted);
            self.counted = status.bytes;
        }
        if status.uploaded > self.uploaded {
            self.stats.add_uploaded(status.uploaded - self.uploaded);
            self.uploaded = status.uploaded;
        }
    }

    fn want_peers(&mut self) {
        self.announcer.request_more();
    }

    fn completed(&mut self) {
        if !self.complete_at_start {
            self.announcer.completed();
        }
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
    let bytes = document::load(ctx, source, MAX_METAINFO_BYTES)?;
    parse(&bytes, source)
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

/// Whether `source` names a `.torrent`: a path or URL whose path ends so.
pub fn names_a_torrent(source: &str) -> bool {
    let path = source.split(['?', '#']).next().unwrap_or(source);
    path.to_ascii_lowercase().ends_with(".torrent")
}

/// A listener for peers on `port`, or on the first free port of
/// [`LISTEN_PORTS`] (any free one when all are taken): on IPv6 and IPv4
/// both where the system allows (`[::]` takes IPv4 peers too on Linux),
/// IPv4 alone where it has no IPv6.
fn bind_listener(port: Option<u16>) -> Result<TcpListener> {
    let bind = |port: u16| {
        TcpListener::bind(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)))
            .or_else(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))))
    };
    if let Some(port) = port {
        return bind(port).map_err(|e| Error::io(e, format!("port {port} for peers")));
    }
    LISTEN_PORTS
        .chain([0])
        .find_map(|port| bind(port).ok())
        .ok_or_else(|| Error::new(ErrorKind::Io, "no free port for peers to dial"))
}
