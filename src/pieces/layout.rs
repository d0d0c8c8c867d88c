//! How one download is cut into pieces: its length and its piece length.
//!
//! Each download has its own: an HTTP download uses
//! [`HTTP_PIECE`](crate::engine::HTTP_PIECE), a torrent the piece length
//! its metainfo gives. Everything that counts pieces or turns a piece into
//! bytes asks the layout, never a constant.

use crate::pieces::piece_set::PieceSet;

/// A resource of `length` bytes in pieces of `piece` bytes (the last one
/// shorter when the length is not a multiple).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    length: u64,
    piece: u64,
}

impl Layout {
    /// `length` bytes in pieces of `piece` bytes (a piece length of 0 is
    /// taken as 1).
    pub fn new(length: u64, piece: u64) -> Layout {
        Layout {
            length,
            piece: piece.max(1),
        }
    }

    /// The resource's length in bytes.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The length of every piece but the last.
    pub fn piece_length(&self) -> u64 {
        self.piece
    }

    /// How many pieces there are.
    pub fn pieces(&self) -> u64 {
        self.length.div_ceil(self.piece)
    }

    /// The first byte of piece `index`.
    pub fn start(&self, index: u64) -> u64 {
        index.saturating_mul(self.piece)
    }

    /// The first and the last byte of piece `index`. `index` must be
    /// below [`Layout::pieces`].
    pub fn range(&self, index: u64) -> (u64, u64) {
        let start = self.start(index);
        (start, (start + self.piece).min(self.length) - 1)
    }

    /// The piece that holds byte `offset`.
    pub fn piece_at(&self, offset: u64) -> u64 {
        offset / self.piece
    }

    /// How many bytes the pieces of `set` hold (the last piece may be
    /// short).
    pub fn bytes_in(&self, set: &PieceSet) -> u64 {
        let pieces = self.pieces();
        let last = pieces.saturating_sub(1);
        let short = pieces * self.piece - self.length;
        set.count() * self.piece - if set.contains(last) { short } else { 0 }
    }

    /// Bytes `0..n` on disk, where the pieces before `index` are whole and
    /// `partial` bytes of piece `index` follow them.
    pub fn contiguous(&self, index: u64, partial: u64) -> u64 {
        (self.start(index) + partial).min(self.length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_piece_is_short_and_counted_so() {
        let layout = Layout::new(10, 4);
        assert_eq!(layout.pieces(), 3);
        assert_eq!(layout.range(0), (0, 3));
        assert_eq!(layout.range(2), (8, 9));
        assert_eq!(layout.piece_at(9), 2);
        let mut set = PieceSet::new();
        set.insert(0);
        assert_eq!(layout.bytes_in(&set), 4);
        set.insert(2);
        assert_eq!(layout.bytes_in(&set), 6);
        assert_eq!(layout.contiguous(2, 5), 10, "never past the end");
    }

    #[test]
    fn each_download_has_its_own_piece_length() {
        let http = Layout::new(5 << 20, 1 << 20);
        let torrent = Layout::new(5 << 20, 256 << 10);
        assert_eq!(http.pieces(), 5);
        assert_eq!(torrent.pieces(), 20);
        assert_eq!(torrent.range(19), ((5 << 20) - (256 << 10), (5 << 20) - 1));
        assert_eq!(Layout::new(0, 4).pieces(), 0);
    }
}
