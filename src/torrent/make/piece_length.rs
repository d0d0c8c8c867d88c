//! How long the pieces of a torrent being made are: chosen from the
//! total size when the caller gives none, checked when it gives one.
//!
//! Owns [`auto_piece_length`] and [`check_piece_length`] and their
//! bounds. Reading a torrent accepts any piece length up to
//! [`MAX_PIECE_LENGTH`](crate::torrent::MAX_PIECE_LENGTH); what is
//! written is held to what every client handles.

use crate::error::{Error, ErrorKind, Result};

/// The shortest piece made: one block of the peer wire protocol (16 KiB).
/// BEP 52 requires at least that, and libtorrent refuses shorter pieces
/// in the torrents it makes; a shorter piece would only add hashes.
pub const MIN_PIECE_LENGTH: u64 = 16 << 10;

/// The longest piece chosen from the size: past it a longer torrent gets
/// more pieces rather than longer ones, since a piece is verified, and
/// fetched again when it fails, as a whole.
pub const MAX_AUTO_PIECE_LENGTH: u64 = 16 << 20;

/// The longest piece accepted when asked for: the longest `mktorrent`
/// makes (`-l 25`). A few pieces are in memory at once while hashing, so
/// this also bounds that memory.
pub const MAX_MADE_PIECE_LENGTH: u64 = 32 << 20;

/// The most pieces the chosen length gives (when it is within its
/// bounds): their hashes take 40 KiB of the `.torrent`, and a peer's
/// bitfield 256 bytes. With lengths in powers of two, a torrent then has
/// from 1,025 to 2,048 pieces, about 1,500 in the middle.
pub const AUTO_MAX_PIECES: u64 = 2048;

/// The piece length for `total` bytes when none is given: the shortest
/// power of two from [`MIN_PIECE_LENGTH`] to [`MAX_AUTO_PIECE_LENGTH`]
/// that makes at most [`AUTO_MAX_PIECES`] pieces (the longest, when none
/// does).
pub fn auto_piece_length(total: u64) -> u64 {
    let mut length = MIN_PIECE_LENGTH;
    while length < MAX_AUTO_PIECE_LENGTH && total.div_ceil(length) > AUTO_MAX_PIECES {
        length *= 2;
    }
    length
}

/// `length` if a torrent can be made with pieces that long: a power of
/// two from [`MIN_PIECE_LENGTH`] to [`MAX_MADE_PIECE_LENGTH`]. Anything
/// else is [`ErrorKind::InvalidInput`], saying why.
pub fn check_piece_length(length: u64) -> Result<u64> {
    if length.is_power_of_two() && (MIN_PIECE_LENGTH..=MAX_MADE_PIECE_LENGTH).contains(&length) {
        return Ok(length);
    }
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!(
            "a piece length of {length} bytes: it must be a power of two from 16 KiB to 32 MiB \
             (16K, 32K, ..., 1M, ..., 32M)"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn the_chosen_length_gives_about_fifteen_hundred_pieces() {
        for (total, expected) in [
            (32 * MIB, 16 * KIB),
            (32 * MIB + 1, 32 * KIB),
            (100 * MIB, 64 * KIB),
            (700 * MIB, 512 * KIB),
            (GIB, 512 * KIB),
            (GIB + 1, MIB),
            (4 * GIB, 2 * MIB),
            (32 * GIB, 16 * MIB),
        ] {
            assert_eq!(auto_piece_length(total), expected, "{total} bytes");
        }
        // Between the bounds, 1,025 to 2,048 pieces, whatever the size.
        let mut total = 32 * MIB + 1;
        while total <= 32 * GIB {
            let length = auto_piece_length(total);
            assert!(length.is_power_of_two());
            let pieces = total.div_ceil(length);
            assert!((1025..=2048).contains(&pieces), "{total}: {pieces} pieces");
            total = total * 7 / 5 + 12_345;
        }
    }

    #[test]
    fn the_chosen_length_stays_within_its_bounds() {
        for total in [0, 1, 16 * KIB, MIB, 32 * MIB] {
            assert_eq!(auto_piece_length(total), MIN_PIECE_LENGTH, "{total}");
        }
        for total in [32 * GIB + 1, 1 << 40, u64::MAX] {
            assert_eq!(auto_piece_length(total), MAX_AUTO_PIECE_LENGTH, "{total}");
        }
    }

    #[test]
    fn a_given_length_must_be_a_power_of_two_from_16_kib_to_32_mib() {
        for good in [16 * KIB, 256 * KIB, MIB, 32 * MIB] {
            assert_eq!(check_piece_length(good).unwrap(), good);
        }
        for bad in [0, 1, 8 * KIB, 100_000, 3 * MIB, 64 * MIB, u64::MAX] {
            let err = check_piece_length(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.message().contains("power of two"), "{err}");
            assert!(err.message().contains(&bad.to_string()), "{err}");
        }
    }
}
