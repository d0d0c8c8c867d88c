//! A torrent's files laid end to end: the pieces are cut from their
//! concatenation, so a piece may start in one file and end in another.
//! This maps the torrent's byte offsets back to files and offsets in them,
//! which is what a store writing pieces into files needs.

use std::ops::Range;

/// One file of a torrent, in the order the torrent lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub(crate) path: Vec<String>,
    pub(crate) length: u64,
    pub(crate) offset: u64,
    pub(crate) pad: bool,
}

impl File {
    /// Its path under the download's directory, one checked component
    /// each: for a single-file torrent the torrent's name, for a
    /// multi-file one the name (the top directory) and then the file's
    /// own path.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// Its length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// Where its bytes start in the torrent's concatenated files.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// A pad file (BEP 47): zeros that align the next file to a piece. It
    /// counts in the piece layout but is never written.
    pub fn is_pad(&self) -> bool {
        self.pad
    }
}

/// A run of a torrent's bytes that lies in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSpan {
    /// The file's index in [`Metainfo::files`](super::Metainfo::files).
    pub file: usize,
    /// Where the run starts in the file.
    pub file_offset: u64,
    /// Where the run starts in the torrent.
    pub torrent_offset: u64,
    /// Its length in bytes (never 0).
    pub length: u64,
}

/// The runs of `range` (torrent offsets) in `files`, in order, leaving out
/// pad files and empty files; bytes past the last file are not covered.
pub(crate) fn spans(files: &[File], range: Range<u64>) -> Vec<FileSpan> {
    let mut out = Vec::new();
    // The first file that ends after the range starts.
    let first = files.partition_point(|f| f.offset + f.length <= range.start);
    for (index, file) in files.iter().enumerate().skip(first) {
        if file.offset >= range.end {
            break;
        }
        if file.pad || file.length == 0 {
            continue;
        }
        let start = range.start.max(file.offset);
        let end = range.end.min(file.offset + file.length);
        out.push(FileSpan {
            file: index,
            file_offset: start - file.offset,
            torrent_offset: start,
            length: end - start,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(lengths: &[(u64, bool)]) -> Vec<File> {
        let mut offset = 0;
        lengths
            .iter()
            .enumerate()
            .map(|(i, &(length, pad))| {
                let file = File {
                    path: vec![format!("f{i}")],
                    length,
                    offset,
                    pad,
                };
                offset += length;
                file
            })
            .collect()
    }

    fn span(file: usize, file_offset: u64, torrent_offset: u64, length: u64) -> FileSpan {
        FileSpan {
            file,
            file_offset,
            torrent_offset,
            length,
        }
    }

    #[test]
    fn a_piece_across_odd_sized_files_and_an_empty_one() {
        // 7, 0, 10 and 3 bytes: 20 in pieces of 8.
        let files = files(&[(7, false), (0, false), (10, false), (3, false)]);
        assert_eq!(spans(&files, 0..8), [span(0, 0, 0, 7), span(2, 0, 7, 1)]);
        assert_eq!(spans(&files, 8..16), [span(2, 1, 8, 8)]);
        assert_eq!(
            spans(&files, 16..20),
            [span(2, 9, 16, 1), span(3, 0, 17, 3)]
        );
        assert_eq!(spans(&files, 20..24), []);
        assert_eq!(spans(&files, 7..7), []);
    }

    #[test]
    fn pad_files_are_skipped_but_keep_their_place() {
        // 5 bytes, 3 of padding, 4 bytes: the second file starts piece 1.
        let files = files(&[(5, false), (3, true), (4, false)]);
        assert_eq!(spans(&files, 0..8), [span(0, 0, 0, 5)]);
        assert_eq!(spans(&files, 8..12), [span(2, 0, 8, 4)]);
        assert_eq!(spans(&files, 4..9), [span(0, 4, 4, 1), span(2, 0, 8, 1)]);
    }

    #[test]
    fn every_byte_of_every_real_file_is_covered_once() {
        let files = files(&[
            (1, false),
            (0, false),
            (13, false),
            (2, true),
            (0, false),
            (9, false),
        ]);
        let total: u64 = files.iter().map(|f| f.length).sum();
        for piece in 1..=total + 1 {
            let mut seen = vec![0u8; total as usize];
            for start in (0..total).step_by(piece as usize) {
                let end = (start + piece).min(total);
                let mut at = start;
                for s in spans(&files, start..end) {
                    assert!(s.torrent_offset >= at && s.length > 0);
                    at = s.torrent_offset + s.length;
                    assert!(s.file_offset + s.length <= files[s.file].length);
                    assert_eq!(files[s.file].offset + s.file_offset, s.torrent_offset);
                    for b in s.torrent_offset..at {
                        seen[b as usize] += 1;
                    }
                }
                assert!(at <= end);
            }
            for (b, count) in seen.iter().enumerate() {
                let pad = (14..16).contains(&b);
                assert_eq!(*count, u8::from(!pad), "byte {b}, pieces of {piece}");
            }
        }
    }
}
