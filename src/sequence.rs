//! File sequences: one stream carrying many files, each as a 4-byte
//! big-endian length and that many bytes.
//!
//! Two forms over any [`ByteSource`]:
//!
//! - [`SequenceFiles`] streams: each file is handed on as a `ByteSource` of
//!   its own whose chunks are, where they can be, the very slices the
//!   underlying source lent — a 4 GiB file never sits in memory;
//! - [`files_from_sequence`] collects each file into a `Vec<u8>`, refusing
//!   a file longer than a maximum (default [`DEFAULT_MAX_FILE_SIZE`]).
//!
//! A length prefix is never trusted for allocation: memory follows the bytes
//! received. A stream that ends between two files ends the sequence; one
//! that ends inside a prefix or a file is an error naming the file (from 1)
//! and the bytes missing, raised after every complete file was yielded.
//!
//! ```
//! use partfetch::sequence::files_from_sequence;
//! use partfetch::source::SliceSource;
//!
//! let stream = b"\0\0\0\x056.009\0\0\0\x06rules!";
//! let files: Vec<Vec<u8>> = files_from_sequence(SliceSource::chunked(&stream[..], 3))
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert_eq!(files, [b"6.009".to_vec(), b"rules!".to_vec()]);
//! ```

use crate::error::{Error, ErrorKind, Result};
use crate::source::ByteSource;

/// The largest file [`files_from_sequence`] holds in memory unless told
/// otherwise.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

/// The bytes of a length prefix.
pub const PREFIX_LEN: usize = 4;

/// Where the splitter is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the prefix of file `index`; `have` of its bytes so far.
    Prefix { have: usize },
    /// Inside file `index`: `remaining` of `length` bytes still to come.
    Body { length: u64, remaining: u64 },
}

/// Splits a sequence into files, each streamed as a [`FileSource`].
pub struct SequenceFiles<S> {
    source: S,
    /// Bytes pulled from `source` that belong after the current point.
    pending: Vec<u8>,
    pending_pos: usize,
    prefix: [u8; PREFIX_LEN],
    state: State,
    /// The file being read, from 1; 0 before the first.
    index: u64,
    max_file_size: Option<u64>,
    /// Set after the end or an error: nothing more is yielded.
    done: bool,
}

impl<S: ByteSource> SequenceFiles<S> {
    /// Splits `source`, with no limit on a file's length.
    pub fn new(source: S) -> SequenceFiles<S> {
        SequenceFiles {
            source,
            pending: Vec::new(),
            pending_pos: 0,
            prefix: [0; PREFIX_LEN],
            state: State::Prefix { have: 0 },
            index: 0,
            max_file_size: None,
            done: false,
        }
    }

    /// Refuses (with an error) a file whose prefix claims more than `max`
    /// bytes.
    pub fn max_file_size(mut self, max: u64) -> SequenceFiles<S> {
        self.max_file_size = Some(max);
        self
    }

    /// Files started so far.
    pub fn files_started(&self) -> u64 {
        self.index
    }

    /// The next file, `None` when the stream ended between files. The rest
    /// of a file left unread is skipped.
    pub fn next_file(&mut self) -> Result<Option<FileSource<'_, S>>> {
        if self.done {
            return Ok(None);
        }
        let result = self.start_next_file();
        match result {
            Ok(Some(length)) => Ok(Some(FileSource {
                files: self,
                length,
            })),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(err) => {
                self.done = true;
                Err(err)
            }
        }
    }

    /// Skips what is left of the current file and reads the next prefix;
    /// returns the new file's length.
    fn start_next_file(&mut self) -> Result<Option<u64>> {
        while let State::Body { remaining, .. } = self.state {
            if remaining == 0 {
                self.state = State::Prefix { have: 0 };
                break;
            }
            self.next_body_chunk()?;
        }
        loop {
            let State::Prefix { have } = self.state else {
                unreachable!("prefix state after skipping the body")
            };
            if have == PREFIX_LEN {
                let length = u64::from(u32::from_be_bytes(self.prefix));
                self.index += 1;
                if let Some(max) = self.max_file_size.filter(|&max| length > max) {
                    return Err(Error::new(
                        ErrorKind::Limit,
                        format!(
                            "file {} claims {length} bytes, more than the maximum of {max} \
                             (the maximum file size)",
                            self.index
                        ),
                    ));
                }
                self.state = State::Body {
                    length,
                    remaining: length,
                };
                return Ok(Some(length));
            }
            if self.pending_pos == self.pending.len() && !self.refill()? {
                if have == 0 {
                    return Ok(None);
                }
                return Err(Error::new(
                    ErrorKind::Sequence,
                    format!(
                        "the stream ended inside the length prefix of file {}: \
                         {} of its {PREFIX_LEN} bytes missing",
                        self.index + 1,
                        PREFIX_LEN - have
                    ),
                ));
            }
            let take = (PREFIX_LEN - have).min(self.pending.len() - self.pending_pos);
            self.prefix[have..have + take]
                .copy_from_slice(&self.pending[self.pending_pos..self.pending_pos + take]);
            self.pending_pos += take;
            self.state = State::Prefix { have: have + take };
        }
    }

    /// Pulls the next chunk of the source into `pending`; false at its end.
    fn refill(&mut self) -> Result<bool> {
        self.pending.clear();
        self.pending_pos = 0;
        match self.source.next_chunk()? {
            Some(chunk) => {
                self.pending.extend_from_slice(chunk);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// The next bytes of the current file: from `pending` if it holds any,
    /// else straight from the source, keeping what lies past the file's end.
    fn next_body_chunk(&mut self) -> Result<Option<&[u8]>> {
        let State::Body { length, remaining } = self.state else {
            return Ok(None);
        };
        if remaining == 0 {
            return Ok(None);
        }
        let left = |available: usize| remaining.min(available as u64) as usize;
        if self.pending_pos < self.pending.len() {
            let n = left(self.pending.len() - self.pending_pos);
            let start = self.pending_pos;
            self.pending_pos += n;
            self.state = State::Body {
                length,
                remaining: remaining - n as u64,
            };
            return Ok(Some(&self.pending[start..start + n]));
        }
        let index = self.index;
        match self.source.next_chunk() {
            Ok(Some(chunk)) => {
                let n = left(chunk.len());
                self.pending.clear();
                self.pending.extend_from_slice(&chunk[n..]);
                self.pending_pos = 0;
                self.state = State::Body {
                    length,
                    remaining: remaining - n as u64,
                };
                Ok(Some(&chunk[..n]))
            }
            Ok(None) => {
                self.done = true;
                Err(Error::new(
                    ErrorKind::Sequence,
                    format!(
                        "the stream ended inside file {index}: {remaining} of its \
                         {length} bytes missing"
                    ),
                ))
            }
            Err(err) => {
                self.done = true;
                Err(err)
            }
        }
    }
}

/// One file of a sequence, streamed. Dropping it unread skips its bytes
/// when the next file is asked for.
pub struct FileSource<'a, S> {
    files: &'a mut SequenceFiles<S>,
    length: u64,
}

impl<S: ByteSource> FileSource<'_, S> {
    /// The file's length, as its prefix gives it.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The file's number in the sequence, from 1.
    pub fn index(&self) -> u64 {
        self.files.index
    }

    /// The bytes not yet handed on.
    pub fn remaining(&self) -> u64 {
        match self.files.state {
            State::Body { remaining, .. } => remaining,
            State::Prefix { .. } => 0,
        }
    }
}

impl<S: ByteSource> ByteSource for FileSource<'_, S> {
    fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
        self.files.next_body_chunk()
    }
}

/// Whole files of a sequence, each collected into memory.
pub struct WholeFiles<S> {
    files: SequenceFiles<S>,
}

/// Splits `source` into whole files, each a `Vec<u8>` of at most
/// [`DEFAULT_MAX_FILE_SIZE`] bytes (see [`WholeFiles::max_file_size`]).
/// The iterator ends after the last file or after the first error.
pub fn files_from_sequence<S: ByteSource>(source: S) -> WholeFiles<S> {
    WholeFiles {
        files: SequenceFiles::new(source).max_file_size(DEFAULT_MAX_FILE_SIZE),
    }
}

impl<S: ByteSource> WholeFiles<S> {
    /// Sets the largest file to hold in memory; a longer one is an error.
    pub fn max_file_size(mut self, max: u64) -> WholeFiles<S> {
        self.files.max_file_size = Some(max);
        self
    }
}

impl<S: ByteSource> Iterator for WholeFiles<S> {
    type Item = Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut file = match self.files.next_file() {
            Ok(Some(file)) => file,
            Ok(None) => return None,
            Err(err) => return Some(Err(err)),
        };
        // Capacity follows the bytes that arrive, not the claimed length.
        let mut bytes = Vec::new();
        loop {
            match file.next_chunk() {
                Ok(Some(chunk)) => bytes.extend_from_slice(chunk),
                Ok(None) => return Some(Ok(bytes)),
                Err(err) => return Some(Err(err)),
            }
        }
    }
}

/// Encodes `files` as a sequence (the inverse of the splitter).
pub fn encode<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (i, file) in files.into_iter().enumerate() {
        let length = u32::try_from(file.len()).map_err(|_| {
            Error::new(
                ErrorKind::Limit,
                format!(
                    "file {} is {} bytes; a sequence file holds at most {}",
                    i + 1,
                    file.len(),
                    u32::MAX
                ),
            )
        })?;
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(file);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `bytes` in chunks of the given lengths, then the rest.
    struct Chunks {
        bytes: Vec<u8>,
        cuts: Vec<usize>,
        at: usize,
        next_cut: usize,
    }

    impl ByteSource for Chunks {
        fn next_chunk(&mut self) -> Result<Option<&[u8]>> {
            if self.at >= self.bytes.len() {
                return Ok(None);
            }
            let mut len = self.bytes.len() - self.at;
            while let Some(&cut) = self.cuts.get(self.next_cut) {
                self.next_cut += 1;
                if cut > self.at {
                    len = cut - self.at;
                    break;
                }
            }
            let start = self.at;
            self.at += len;
            Ok(Some(&self.bytes[start..start + len]))
        }
    }

    fn chunks(bytes: &[u8], cuts: &[usize]) -> Chunks {
        Chunks {
            bytes: bytes.to_vec(),
            cuts: cuts.to_vec(),
            at: 0,
            next_cut: 0,
        }
    }

    fn sample() -> (Vec<Vec<u8>>, Vec<u8>) {
        let files = vec![
            b"6.009".to_vec(),
            Vec::new(),
            b"rules!".to_vec(),
            (0..40u8).collect(),
            Vec::new(),
        ];
        let encoded = encode(files.iter().map(Vec::as_slice)).unwrap();
        (files, encoded)
    }

    #[test]
    fn the_spec_example_splits_into_two_files() {
        let stream = [
            0, 0, 0, 5, 0x36, 0x2E, 0x30, 0x30, 0x39, 0, 0, 0, 6, 0x72, 0x75, 0x6C, 0x65, 0x73,
            0x21,
        ];
        let files: Vec<_> = files_from_sequence(chunks(&stream, &[]))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(files, [b"6.009".to_vec(), b"rules!".to_vec()]);
    }

    #[test]
    fn every_pair_of_chunk_boundaries_gives_the_same_files() {
        let (files, encoded) = sample();
        for a in 0..=encoded.len() {
            for b in a..=encoded.len() {
                let got: Vec<_> = files_from_sequence(chunks(&encoded, &[a, b]))
                    .collect::<Result<_>>()
                    .unwrap();
                assert_eq!(got, files, "cuts at {a} and {b}");
            }
        }
        // One byte at a time, streamed.
        let mut split =
            SequenceFiles::new(chunks(&encoded, &(1..encoded.len()).collect::<Vec<_>>()));
        let mut got = Vec::new();
        while let Some(mut file) = split.next_file().unwrap() {
            let mut bytes = Vec::new();
            while let Some(chunk) = file.next_chunk().unwrap() {
                assert!(!chunk.is_empty());
                bytes.extend_from_slice(chunk);
            }
            assert_eq!(file.remaining(), 0);
            got.push(bytes);
        }
        assert_eq!(got, files);
    }

    #[test]
    fn unread_files_are_skipped() {
        let (files, encoded) = sample();
        let mut split = SequenceFiles::new(chunks(&encoded, &[3, 7, 20]));
        let mut lengths = Vec::new();
        while let Some(file) = split.next_file().unwrap() {
            lengths.push(file.length());
        }
        let expected: Vec<u64> = files.iter().map(|f| f.len() as u64).collect();
        assert_eq!(lengths, expected);
    }

    #[test]
    fn a_truncated_stream_yields_the_complete_files_then_says_what_is_missing() {
        let (files, encoded) = sample();
        // Cut inside file 3's prefix (after "6.009" and the empty file).
        let cut = 4 + 5 + 4 + 2;
        let mut got = files_from_sequence(chunks(&encoded[..cut], &[]));
        assert_eq!(got.next().unwrap().unwrap(), files[0]);
        assert_eq!(got.next().unwrap().unwrap(), files[1]);
        let err = got.next().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Sequence);
        assert!(
            err.to_string().contains("file 3") && err.to_string().contains("2 of its 4 bytes"),
            "{err}"
        );
        assert!(got.next().is_none());

        // Cut inside file 4's content: 40 bytes claimed, 10 present.
        let cut = 4 + 5 + 4 + 4 + 6 + 4 + 10;
        let err = files_from_sequence(chunks(&encoded[..cut], &[]))
            .nth(3)
            .unwrap()
            .unwrap_err();
        assert!(
            err.to_string().contains("file 4") && err.to_string().contains("30 of its 40"),
            "{err}"
        );
    }

    #[test]
    fn a_claimed_length_does_not_allocate_and_the_maximum_is_enforced() {
        // Claims 4 GiB - 1 but sends 3 bytes: an error, not an allocation.
        let stream = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = files_from_sequence(chunks(&stream, &[]))
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
        let err = files_from_sequence(chunks(&stream, &[]))
            .max_file_size(u64::MAX)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(err.to_string().contains("4294967292"), "{err}");
    }

    #[test]
    fn a_prefix_claiming_4_gib_then_10_bytes_streams_the_10_then_fails() {
        // The largest claim a prefix can make, 4 GiB - 1, then 10 bytes.
        let mut stream = vec![0xff; PREFIX_LEN];
        stream.extend_from_slice(b"0123456789");
        let mut split = SequenceFiles::new(chunks(&stream, &[2, 9]));
        let mut file = split.next_file().unwrap().unwrap();
        assert_eq!(file.length(), u64::from(u32::MAX));
        let mut got = Vec::new();
        let err = loop {
            match file.next_chunk() {
                Ok(Some(chunk)) => got.extend_from_slice(chunk),
                Ok(None) => panic!("a truncated file must not end cleanly"),
                Err(e) => break e,
            }
        };
        assert_eq!(got, b"0123456789");
        assert_eq!(err.kind(), ErrorKind::Sequence);
        assert_eq!(
            err.message(),
            "the stream ended inside file 1: 4294967285 of its 4294967295 bytes missing"
        );
        assert!(split.next_file().unwrap().is_none());
        // Collected whole, the claim is refused before any byte is kept.
        let err = files_from_sequence(chunks(&stream, &[]))
            .next()
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Limit);
        assert_eq!(
            err.message(),
            "file 1 claims 4294967295 bytes, more than the maximum of 268435456 \
             (the maximum file size)"
        );
    }

    #[test]
    fn an_empty_stream_has_no_files() {
        assert!(files_from_sequence(chunks(&[], &[])).next().is_none());
    }

    #[test]
    fn body_chunks_are_lent_from_the_source_without_copies_when_they_fit() {
        // A file larger than one chunk: the middle chunks arrive whole.
        let body = vec![7u8; 1000];
        let encoded = encode([body.as_slice()]).unwrap();
        let mut split = SequenceFiles::new(chunks(&encoded, &[4, 504]));
        let mut file = split.next_file().unwrap().unwrap();
        assert_eq!(file.next_chunk().unwrap().unwrap().len(), 500);
        assert_eq!(file.next_chunk().unwrap().unwrap().len(), 500);
        assert!(file.next_chunk().unwrap().is_none());
    }
}
