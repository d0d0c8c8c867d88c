//! The control file beside a partial download: what lets the same command,
//! run again, continue where the last run stopped.
//!
//! `FILE.partfetch` holds the bytes received so far, written in order;
//! `FILE.partfetch.state` says which source they came from, what the server
//! said about it (length, `If-Range` validator) and how many of them are
//! known to be on disk. The data is synced before that count is recorded,
//! and the control file is replaced atomically (written beside, synced,
//! renamed), so after a crash the count never exceeds what the disk holds.
//!
//! The format is a few `key value` lines, so a person can read it:
//!
//! ```text
//! partfetch-state 1
//! url http://example.com/big.iso
//! length 4294967296
//! validator "5f3a-100000000"
//! done 1073741824
//! ```
//!
//! A manifest's download says so (a `manifest` line: the bytes before its
//! first completed part cannot be continued) and lists the parts it
//! completed, in order, as
//! `part SIZE LINE MANIFEST-URL` (the URL left out when it is the previous
//! part's): a later run skips them without fetching them and continues
//! after the last one. The parts fetched whole ahead of the one being
//! written when the run stopped follow as `ahead ORDINAL SIZE LINE
//! MANIFEST-URL`, their bytes in `FILE.partfetch.ahead` (docs/manifest.md).
//!
//! A resource written piece by piece at its offsets records the piece size
//! and the pieces on disk (`done` is then the bytes from the start without
//! a gap):
//!
//! ```text
//! piece 1048576
//! have 0-2047,2050,2052-2060
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::download::files::{state_path, NEW_SUFFIX};
use crate::error::{Error, ErrorKind};
use crate::manifest::expand::{AheadPart, PartRecord};
use crate::pieces::PieceSet;
use crate::url::Url;

/// The first line of every control file.
const MAGIC: &str = "partfetch-state 1";

/// What a control file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The URL as the user gave it.
    pub url: String,
    /// The resource's length, when known.
    pub length: Option<u64>,
    /// The `If-Range` value for continuing, when the server gave one.
    pub validator: Option<String>,
    /// Bytes of the data file known to be on disk.
    pub done: u64,
    /// The URL is a manifest: only its completed parts can be skipped.
    pub manifest: bool,
    /// For a manifest, the parts completed, in order (their sizes add up to
    /// at most `done`).
    pub parts: Vec<PartRecord>,
    /// For a resource written piece by piece, the piece length and the
    /// pieces on disk.
    pub have: Option<(u64, PieceSet)>,
    /// For a manifest, the parts fetched whole ahead of the one being
    /// written when the run stopped: their bytes are in `FILE.partfetch.ahead`,
    /// one after the other, in this order.
    pub ahead: Vec<AheadPart>,
}

/// What the earlier run that wrote the data file `temp` recorded, when a
/// download of `url` can continue it. Otherwise an error (of kind
/// [`ErrorKind::ResumeMismatch`]) that says why: a download that requires
/// resuming fails with it, any other starts afresh.
pub fn earlier_run(temp: &Path, url: &str) -> Result<State, Error> {
    let shown = temp.display();
    let cannot = |why: String| Err(Error::new(ErrorKind::ResumeMismatch, why));
    let Some(state) = State::load(&state_path(temp)) else {
        return cannot(if temp.exists() {
            format!("{shown} has no control file beside it")
        } else {
            format!("there is no {shown} from an earlier run")
        });
    };
    if state.url != url {
        let other =
            Url::parse(&state.url).map_or_else(|_| state.url.clone(), |u| u.redacted().to_string());
        return cannot(format!(
            "{shown} is a partial download of another URL, {other}"
        ));
    }
    if !state.has_progress() {
        return cannot("the last run left nothing that can be continued".to_owned());
    }
    let on_disk = std::fs::metadata(temp).map_or(0, |m| m.len());
    if state.extent() > on_disk {
        return cannot(format!("{shown} is shorter than its control file says"));
    }
    Ok(state)
}

impl State {
    /// Reads a control file; `None` when there is none or it is not one
    /// (a fresh download then starts).
    pub fn load(path: &Path) -> Option<State> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let (mut url, mut length, mut validator, mut done) = (None, None, None, None);
        let (mut piece, mut have) = (None, None);
        let mut manifest = false;
        let mut parts = Vec::new();
        let mut ahead = Vec::new();
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "url" => url = Some(value.to_owned()),
                "length" => length = value.parse::<u64>().ok(),
                "validator" => validator = Some(value.to_owned()).filter(|v| !v.is_empty()),
                "done" => done = value.parse().ok(),
                "part" => parts.push(parse_part(value, parts.last())?),
                "ahead" => ahead.push(parse_ahead(value)?),
                "piece" => piece = Some(value.parse::<u64>().ok()?),
                "manifest" => manifest = true,
                "have" => have = Some(value.to_owned()),
                _ => {}
            }
        }
        let have = match (have, piece) {
            (None, _) => None,
            (Some(text), Some(piece)) if piece > 0 => {
                Some((piece, PieceSet::parse(&text, length?.div_ceil(piece))?))
            }
            (Some(_), _) => return None,
        };
        Some(State {
            url: url?,
            length,
            validator,
            done: done?,
            manifest,
            parts,
            have,
            ahead,
        })
    }

    /// Where a resumed download continues: after the completed parts for a
    /// manifest, else after `done`.
    pub fn resume_at(&self) -> u64 {
        if self.manifest {
            self.parts.iter().map(|p| p.size).sum()
        } else {
            self.done
        }
    }

    /// Whether an earlier run left anything worth continuing from. (A
    /// manifest's bytes before its first completed part are not: the
    /// manifest's own URL cannot be continued at an offset.)
    pub fn has_progress(&self) -> bool {
        self.resume_at() > 0
            || self.have.as_ref().is_some_and(|(_, have)| !have.is_empty())
            || !self.ahead.is_empty()
    }

    /// Bytes of the data file a later run can use: the completed parts of
    /// a manifest, the pieces on disk, or the bytes from the start.
    pub fn kept_bytes(&self) -> u64 {
        match &self.have {
            Some((piece, have)) => have
                .runs()
                .iter()
                .map(|run| {
                    let end = run.end.saturating_mul(*piece);
                    let end = end.min(self.length.unwrap_or(u64::MAX));
                    end.saturating_sub(run.start.saturating_mul(*piece))
                })
                .sum(),
            None => self.resume_at(),
        }
    }

    /// How long the data file must be at least for this record to be
    /// believed.
    pub fn extent(&self) -> u64 {
        let pieces_end = self.have.as_ref().map_or(0, |(piece, have)| {
            have.runs().last().map_or(0, |run| {
                run.end
                    .saturating_mul(*piece)
                    .min(self.length.unwrap_or(u64::MAX))
            })
        });
        self.resume_at().max(pieces_end)
    }

    /// Replaces the control file at `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let mut text = format!("{MAGIC}\nurl {}\n", self.url);
        if let Some(length) = self.length {
            text.push_str(&format!("length {length}\n"));
        }
        if let Some(validator) = &self.validator {
            text.push_str(&format!("validator {validator}\n"));
        }
        text.push_str(&format!("done {}\n", self.done));
        if self.manifest {
            text.push_str("manifest\n");
        }
        if let Some((piece, have)) = &self.have {
            text.push_str(&format!("piece {piece}\nhave {have}\n"));
        }
        // A manifest's URL is written once for its run of parts: a long
        // manifest's record stays a few bytes per part.
        let mut previous: Option<&Url> = None;
        for part in &self.parts {
            text.push_str(&format!("part {} {}", part.size, part.line));
            if previous != Some(&part.manifest) {
                text.push_str(&format!(" {}", part.manifest));
                previous = Some(&part.manifest);
            }
            text.push('\n');
        }
        for part in &self.ahead {
            let record = &part.record;
            text.push_str(&format!(
                "ahead {} {} {} {}\n",
                part.ordinal, record.size, record.line, record.manifest
            ));
        }
        let mut temp = path.as_os_str().to_owned();
        temp.push(NEW_SUFFIX);
        let temp = PathBuf::from(temp);
        crate::util::fs::replace_file(path, &temp, text.as_bytes())
            .map_err(|e| Error::io(e, path.display()))
    }
}

/// `SIZE LINE URL`
/// The control file is rewritten at least this often during a download.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// The control file of a download in progress: what it will say next, and
/// when it was last written.
pub struct Checkpoint {
    path: PathBuf,
    /// What the next [`Checkpoint::save`] writes.
    pub state: State,
    last: Instant,
}

impl Checkpoint {
    /// The control file at `path`, to hold `state` (nothing written yet).
    pub fn new(path: PathBuf, state: State) -> Checkpoint {
        Checkpoint {
            path,
            state,
            last: Instant::now(),
        }
    }

    /// Whether [`CHECKPOINT_EVERY`] has passed since the last save.
    pub fn due(&self) -> bool {
        self.last.elapsed() >= CHECKPOINT_EVERY
    }

    /// Takes a manifest's completed parts, when it records them. Past
    /// [`MAX_RECORDED_PARTS`] the list stops growing: still parts the data
    /// file holds, in order, so a later run resumes after them and fetches
    /// the rest again.
    ///
    /// [`MAX_RECORDED_PARTS`]: crate::manifest::expand::MAX_RECORDED_PARTS
    pub fn update_parts(&mut self, parts: Option<&[PartRecord]>) {
        if let Some(parts) = parts {
            if parts.len() != self.state.parts.len() {
                self.state.parts = parts.to_vec();
            }
        }
    }

    /// The data file was cut to `len` bytes: the record claims no more,
    /// and keeps only a manifest's parts that end within them.
    pub fn cut_to(&mut self, len: u64) {
        self.state.done = self.state.done.min(len);
        let mut end = 0;
        self.state.parts.retain(|part| {
            end += part.size;
            end <= len
        });
    }

    /// Makes the data durable with `sync`, then records what the state says
    /// of it: after a crash the record never claims more than the disk
    /// holds.
    pub fn save<E: From<Error>>(&mut self, sync: impl FnOnce() -> Result<(), E>) -> Result<(), E> {
        sync()?;
        self.last = Instant::now();
        self.state.save(&self.path).map_err(E::from)
    }

    /// Where the control file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `ORDINAL SIZE LINE URL`
fn parse_ahead(value: &str) -> Option<AheadPart> {
    let (ordinal, rest) = value.split_once(' ')?;
    let record = parse_part(rest, None)?;
    Some(AheadPart {
        ordinal: ordinal.parse().ok()?,
        record,
    })
}

/// `SIZE LINE URL`, or `SIZE LINE` for a part of the same manifest as the
/// part before (`previous`).
fn parse_part(value: &str, previous: Option<&PartRecord>) -> Option<PartRecord> {
    let mut fields = value.splitn(3, ' ');
    let size = fields.next()?.parse().ok()?;
    let line = fields.next()?.parse().ok()?;
    let manifest = match fields.next() {
        Some(url) => Arc::new(Url::parse(url).ok()?),
        // Shared, as the stream shares it: one URL for the run of parts.
        None => Arc::clone(&previous?.manifest),
    };
    Some(PartRecord {
        manifest,
        line,
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIECE: u64 = 1024 * 1024;

    fn part(manifest: &str, line: usize, size: u64) -> PartRecord {
        PartRecord {
            manifest: Arc::new(Url::parse(manifest).unwrap()),
            line,
            size,
        }
    }

    #[test]
    fn a_state_survives_a_round_trip_and_garbage_is_no_state() {
        let dir = std::env::temp_dir().join(format!("pf-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.partfetch.state");
        let state = State {
            url: "http://h/f?a=b c".into(),
            length: Some(10),
            validator: Some("\"x y\"".into()),
            done: 7,
            manifest: true,
            parts: vec![
                part("http://h/m.parts", 3, 5),
                part("http://h/m.parts", 5, 6),
                part("http://h/inner.parts", 1, 7),
                part("http://h/m.parts", 9, 8),
            ],
            have: None,
            ahead: vec![AheadPart {
                ordinal: 9,
                record: part("http://h/m.parts", 12, 4),
            }],
        };
        state.save(&path).unwrap();
        assert_eq!(State::load(&path), Some(state));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("\npart ").count(), 4, "a part a line: {text}");
        assert_eq!(
            text.matches("http://h/m.parts").count(),
            2 + 1,
            "a manifest's URL once per run of its parts, and on each part kept ahead: {text}"
        );
        let mut have = PieceSet::first(3);
        have.insert(5);
        let pieces = State {
            url: "http://h/big".into(),
            length: Some(6 * PIECE - 1),
            validator: None,
            done: 3 * PIECE,
            manifest: false,
            parts: Vec::new(),
            have: Some((PIECE, have.clone())),
            ahead: Vec::new(),
        };
        pieces.save(&path).unwrap();
        assert_eq!(State::load(&path), Some(pieces.clone()));
        assert_eq!(pieces.extent(), 6 * PIECE - 1);
        let text = std::fs::read_to_string(&path).unwrap();
        // A torrent's pieces, say: the record keeps their length, and the
        // download decides whether they are its own.
        let other_size = text.replace(&format!("piece {PIECE}"), "piece 4096");
        std::fs::write(&path, other_size).unwrap();
        let loaded = State::load(&path).unwrap();
        assert_eq!(loaded.have, Some((4096, have)));
        std::fs::write(&path, text.replace(&format!("piece {PIECE}"), "piece 0")).unwrap();
        assert_eq!(State::load(&path), None, "pieces of no length");
        let no_length = State {
            url: "http://h/f".into(),
            length: None,
            validator: None,
            done: 0,
            manifest: false,
            parts: Vec::new(),
            have: None,
            ahead: Vec::new(),
        };
        no_length.save(&path).unwrap();
        assert_eq!(State::load(&path), Some(no_length));
        std::fs::write(&path, "something else\ndone 5\n").unwrap();
        assert_eq!(State::load(&path), None);
        std::fs::write(&path, format!("{MAGIC}\nurl x\n")).unwrap();
        assert_eq!(State::load(&path), None, "no done line");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
