//! The BitTorrent peer wire protocol (BEP 3) and the extension handshake
//! (BEP 10), as functions over byte slices: a peer's bytes go in, a
//! checked [`Handshake`] or [`Message`] and the count of bytes used come
//! out, or [`Decoded::NeedMore`] when the input stops short, or an
//! [`Error`] that closes the connection.
//!
//! Owned here: the 68-byte handshake and our peer id (BEP 20), the framing
//! and fields of every message we accept, their bounds (a hostile length
//! prefix is refused before its body is waited for, so nothing here ever
//! asks the caller to buffer more than [`max_message_length`]), the
//! [`Bitfield`] of a peer's pieces, and the bencoded extension handshake.
//!
//! Left to others: sockets, timeouts and the read buffer (the caller owns
//! the I/O and grows its buffer up to the length asked for); which pieces
//! to request (the picker), whom to unchoke (the choker), and whether a
//! block's `begin` and length fit its piece (the caller knows the piece
//! length; here only the piece index and the block size are checked).
//!
//! We advertise the extension protocol (BEP 10) and nothing else: not the
//! fast extension (BEP 6), so its messages (ids 13 to 17) are unknown ids
//! and an error, as BEP 6 says they must be from a peer that did not see
//! the bit; nor DHT (BEP 5), though a `port` message is decoded and may be
//! ignored, since some clients send it regardless.

use crate::bencode::{self, Node, Value};

/// The first 20 bytes of every handshake: the length 19, then the name.
pub const PROTOCOL: &[u8; 20] = b"\x13BitTorrent protocol";

/// A handshake's length: the protocol string, 8 reserved bytes, the
/// info-hash and the peer id.
pub const HANDSHAKE_LEN: usize = 68;

/// The reserved byte and bit that say "I speak the extension protocol"
/// (BEP 10: the 20th bit from the right, `0x10` in `reserved[5]`).
pub const EXTENSION_BIT: (usize, u8) = (5, 0x10);

/// The prefix of our peer ids (BEP 20, Azureus style): `PF` for partfetch
/// and the version 0.1.0 as four digits.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-PF0100-";

/// The largest block we ask for, and so the largest `piece` payload we
/// accept and the largest `request` or `cancel` we answer: 16 KiB is what
/// every current client requests, and most close the connection on a
/// request for more. A peer that sends a longer block sends what we never
/// asked for.
pub const MAX_BLOCK: u32 = 16 * 1024;

/// The largest extended message payload (after its one-byte id). The
/// largest extension message we will read is a `ut_metadata` data message
/// (BEP 9): a short bencoded header followed by a 16 KiB piece of the
/// metadata; 1 KiB is ample for the header, and `ut_pex` or a handshake
/// are far smaller. A peer's extension handshake is read under the same
/// bound.
pub const MAX_EXTENDED_PAYLOAD: u32 = 16 * 1024 + 1024;

/// The extended message id of the extension handshake (BEP 10); other ids
/// are the ones each side assigned in its handshake's `m`.
pub const EXTENDED_HANDSHAKE_ID: u8 = 0;

/// The number of outstanding requests we accept from a peer, told in our
/// extension handshake's `reqq`. A waiting request costs us 12 bytes (its
/// block is read only when sent), and Transmission 3 keeps at most `reqq`
/// requests out, refilled about once a second: with libtorrent's 250 it
/// took 3.9 MiB/s from us, with 2048 the link's speed (BENCHMARKS.md,
/// "Seeding"). aria2c ignores `reqq` and goes a little past 250.
pub const OUR_REQQ: u32 = 2048;

/// The number of outstanding requests assumed for a peer that does not
/// say (`reqq` missing): libtorrent's default, which BEP 10 cites.
pub const DEFAULT_PEER_REQQ: u32 = 250;

/// A peer's `reqq` is clamped to at most this: 1024 blocks are 16 MiB in
/// flight to one peer, more than any link needs, and a peer that claims
/// millions would otherwise let a hostile value size our queues.
pub const MAX_PEER_REQQ: u32 = 1024;

/// Our client name and version, the `v` of our extension handshake.
pub const CLIENT_NAME: &str = concat!("partfetch/", env!("CARGO_PKG_VERSION"));

/// Why a peer's bytes are refused. Each closes the connection: the peer
/// either does not speak the protocol as we advertised it, or is hostile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A handshake byte that is not the protocol string's (an encrypted
    /// opening, HTTP, or noise), found at its first wrong byte.
    NotBitTorrent {
        /// Where, from the handshake's start.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// The handshake names another torrent.
    OtherInfoHash,
    /// The handshake carries our own peer id: we connected to ourselves.
    OwnPeerId,
    /// A length prefix larger than any message may be here.
    TooLong {
        /// The length prefix.
        length: u32,
        /// The largest allowed with this torrent's piece count.
        max: u32,
    },
    /// A message id we do not accept (one of the fast extension, which we
    /// did not advertise, or none at all).
    UnknownId(u8),
    /// A length prefix that does not fit its message id (a `have` that is
    /// not 5 bytes long, a `piece` with no block, …).
    BadLength {
        /// The message id.
        id: u8,
        /// The length prefix.
        length: u32,
    },
    /// A `request` or `cancel` length of 0 or over [`MAX_BLOCK`], or a
    /// `piece` block over it.
    BadBlockLength(u32),
    /// A piece index at or past the torrent's piece count.
    PieceOutOfRange {
        /// The index.
        index: u32,
        /// The piece count.
        pieces: u32,
    },
    /// A bitfield whose length is not the piece count's.
    BitfieldLength {
        /// The length received.
        length: usize,
        /// `ceil(pieces / 8)`.
        expected: usize,
    },
    /// A bitfield with a bit set past the last piece.
    SpareBits,
    /// An extension handshake that is not a bencoded dictionary.
    ExtensionHandshake(bencode::Error),
    /// An extension handshake that decodes but is not a dictionary.
    ExtensionHandshakeNotDict,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotBitTorrent { offset, byte } => write!(
                f,
                "not a BitTorrent handshake: byte 0x{byte:02x} at {offset}"
            ),
            Error::OtherInfoHash => write!(f, "handshake for another torrent"),
            Error::OwnPeerId => write!(f, "connected to ourselves (our own peer id)"),
            Error::TooLong { length, max } => {
                write!(
                    f,
                    "message of {length} bytes, more than the maximum of {max}"
                )
            }
            Error::UnknownId(id) => write!(f, "unknown message id {id}"),
            Error::BadLength { id, length } => {
                write!(f, "message id {id} with invalid length {length}")
            }
            Error::BadBlockLength(n) => {
                write!(f, "block of {n} bytes (at least 1, at most {MAX_BLOCK})")
            }
            Error::PieceOutOfRange { index, pieces } => {
                write!(f, "piece {index} out of range (the torrent has {pieces})")
            }
            Error::BitfieldLength { length, expected } => {
                write!(f, "bitfield of {length} bytes where {expected} are needed")
            }
            Error::SpareBits => write!(f, "bitfield has bits set past the last piece"),
            Error::ExtensionHandshake(e) => write!(f, "invalid extension handshake: {e}"),
            Error::ExtensionHandshakeNotDict => {
                write!(f, "extension handshake is not a dictionary")
            }
        }
    }
}

impl std::error::Error for Error {}

/// The outcome of reading a handshake or a message from the start of a
/// buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded<T> {
    /// The input stops short: read more and call again with the whole
    /// buffer. No byte was used.
    NeedMore {
        /// The buffer must hold at least this many bytes before the call
        /// can do more; exact once a message's length prefix is read.
        at_least: usize,
    },
    /// A value, read from the buffer's first `used` bytes.
    Done {
        /// What was read.
        value: T,
        /// How many bytes it took; the rest is the next message's.
        used: usize,
    },
}

/// A new BEP 20 peer id: [`PEER_ID_PREFIX`] and 12 random bytes, made once
/// per session. The bytes come from the standard library's per-process
/// random hash keys, which is no cryptographic generator but enough to
/// keep two clients (or two sessions) from sharing an id.
pub fn new_peer_id() -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..8].copy_from_slice(PEER_ID_PREFIX);
    for chunk in id[8..].chunks_mut(8) {
        let bytes = crate::util::random::u64().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    id
}

/// A handshake, ours or a peer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// Bits that announce extensions.
    pub reserved: [u8; 8],
    /// The torrent's info-hash.
    pub info_hash: [u8; 20],
    /// The sender's peer id.
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// Ours: the extension protocol bit set, no other.
    pub fn ours(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0u8; 8];
        reserved[EXTENSION_BIT.0] |= EXTENSION_BIT.1;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// Whether the sender speaks the extension protocol (BEP 10).
    pub fn supports_extensions(&self) -> bool {
        self.reserved[EXTENSION_BIT.0] & EXTENSION_BIT.1 != 0
    }

    /// The 68 bytes on the wire.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..].copy_from_slice(&self.peer_id);
        out
    }

    /// Reads a peer's handshake from the start of `input`, for the torrent
    /// `info_hash`, refusing `our_id`. Each byte is checked as soon as it
    /// is there: a peer that opens with anything but the protocol string
    /// (an encrypted stream, an HTTP request) is refused at its first
    /// wrong byte, and one for another torrent at its first wrong hash
    /// byte, without waiting for the rest.
    pub fn parse(
        input: &[u8],
        info_hash: &[u8; 20],
        our_id: &[u8; 20],
    ) -> Result<Decoded<Handshake>, Error> {
        for (offset, (&byte, &want)) in input.iter().zip(PROTOCOL.iter()).enumerate() {
            if byte != want {
                return Err(Error::NotBitTorrent { offset, byte });
            }
        }
        let hash_received = input.get(28..).unwrap_or_default();
        if hash_received.iter().zip(info_hash).any(|(a, b)| a != b) {
            return Err(Error::OtherInfoHash);
        }
        let Some(whole) = input.get(..HANDSHAKE_LEN) else {
            return Ok(Decoded::NeedMore {
                at_least: HANDSHAKE_LEN,
            });
        };
        let mut handshake = Handshake::ours(*info_hash, [0; 20]);
        handshake.reserved.copy_from_slice(&whole[20..28]);
        handshake.peer_id.copy_from_slice(&whole[48..]);
        if handshake.peer_id == *our_id {
            return Err(Error::OwnPeerId);
        }
        Ok(Decoded::Done {
            value: handshake,
            used: HANDSHAKE_LEN,
        })
    }
}

/// Which pieces a peer has (or we have): one bit per piece, the first
/// piece in the first byte's high bit, as the `bitfield` message sends it.
/// The bits past the last piece are always zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    pieces: u32,
}

impl Bitfield {
    /// No piece, out of `pieces`.
    pub fn new(pieces: u32) -> Bitfield {
        Bitfield {
            bytes: vec![0; bitfield_len(pieces)],
            pieces,
        }
    }

    /// The bitfield a peer sent, for a torrent of `pieces` pieces: exactly
    /// `ceil(pieces / 8)` bytes, as BEP 3 requires, with the spare bits of
    /// the last byte zero, so that one set of pieces has one encoding.
    pub fn from_bytes(bytes: &[u8], pieces: u32) -> Result<Bitfield, Error> {
        let expected = bitfield_len(pieces);
        if bytes.len() != expected {
            return Err(Error::BitfieldLength {
                length: bytes.len(),
                expected,
            });
        }
        let spare = u64::from(pieces.div_ceil(8)) * 8 - u64::from(pieces);
        if let Some(&last) = bytes.last() {
            // `spare` is below 8: the mask of the last byte's spare bits.
            if last & ((1u16 << spare) - 1) as u8 != 0 {
                return Err(Error::SpareBits);
            }
        }
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            pieces,
        })
    }

    /// The bytes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The piece count.
    pub fn pieces(&self) -> u32 {
        self.pieces
    }

    /// Whether piece `index` is there (false past the last piece).
    pub fn get(&self, index: u32) -> bool {
        index < self.pieces && self.bytes[index as usize / 8] & (0x80 >> (index % 8)) != 0
    }

    /// Marks piece `index` as there, or not. An index past the last piece
    /// is ignored: decoded `have` messages are checked before they get
    /// here, so only a caller's bug could pass one.
    pub fn set(&mut self, index: u32, present: bool) {
        debug_assert!(index < self.pieces, "piece {index} of {}", self.pieces);
        if index >= self.pieces {
            return;
        }
        let mask = 0x80 >> (index % 8);
        let byte = &mut self.bytes[index as usize / 8];
        if present {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }

    /// How many pieces are there.
    pub fn count(&self) -> u32 {
        self.bytes.iter().map(|b| b.count_ones()).sum()
    }

    /// Whether every piece is there (a seed).
    pub fn is_complete(&self) -> bool {
        self.count() == self.pieces
    }
}

/// `ceil(pieces / 8)`: a bitfield's bytes.
fn bitfield_len(pieces: u32) -> usize {
    pieces.div_ceil(8) as usize
}

/// A peer wire message (BEP 3, and BEP 10's `extended`). Blocks and
/// extension payloads borrow from the decoded buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Length 0: nothing, but the connection is alive.
    KeepAlive,
    /// 0: the sender will not answer requests.
    Choke,
    /// 1: the sender will answer requests.
    Unchoke,
    /// 2: the sender wants pieces we have.
    Interested,
    /// 3: the sender wants none.
    NotInterested,
    /// 4: the sender now has piece `index`.
    Have {
        /// The piece.
        index: u32,
    },
    /// 5: the pieces the sender has, right after the handshake.
    Bitfield(Bitfield),
    /// 6: asks for `length` bytes of piece `index` from `begin`.
    Request {
        /// The piece.
        index: u32,
        /// The offset in the piece.
        begin: u32,
        /// How many bytes, 1 to [`MAX_BLOCK`].
        length: u32,
    },
    /// 7: a block of piece `index` from `begin`.
    Piece {
        /// The piece.
        index: u32,
        /// The offset in the piece.
        begin: u32,
        /// The bytes, 1 to [`MAX_BLOCK`].
        block: &'a [u8],
    },
    /// 8: withdraws a request.
    Cancel {
        /// The piece.
        index: u32,
        /// The offset in the piece.
        begin: u32,
        /// How many bytes, 1 to [`MAX_BLOCK`].
        length: u32,
    },
    /// 9: the sender's DHT port; we run no DHT, so it is ignored.
    Port(u16),
    /// 20: an extension message (BEP 10): id 0 is the extension handshake,
    /// others are the ids we assigned in ours.
    Extended {
        /// The extension message id.
        id: u8,
        /// The rest of the message.
        payload: &'a [u8],
    },
}

const CHOKE: u8 = 0;
const UNCHOKE: u8 = 1;
const INTERESTED: u8 = 2;
const NOT_INTERESTED: u8 = 3;
const HAVE: u8 = 4;
const BITFIELD: u8 = 5;
const REQUEST: u8 = 6;
const PIECE: u8 = 7;
const CANCEL: u8 = 8;
const PORT: u8 = 9;
const EXTENDED: u8 = 20;

/// The largest length prefix accepted for a torrent of `pieces` pieces:
/// the longest of a whole bitfield, a [`MAX_BLOCK`] piece and a
/// [`MAX_EXTENDED_PAYLOAD`] extended message. A longer prefix is refused
/// as soon as its 4 bytes are read, so a hostile one never makes the
/// caller wait for, or buffer, megabytes.
pub fn max_message_length(pieces: u32) -> u32 {
    let bitfield = 1 + pieces.div_ceil(8);
    bitfield.max(9 + MAX_BLOCK).max(2 + MAX_EXTENDED_PAYLOAD)
}

/// Reads one message from the start of `input`, for a torrent of `pieces`
/// pieces. A length prefix is checked as soon as its 4 bytes are there and
/// against its id as soon as the id is, before the body is waited for.
pub fn decode(input: &[u8], pieces: u32) -> Result<Decoded<Message<'_>>, Error> {
    let Some(prefix) = input.get(..4) else {
        return Ok(Decoded::NeedMore { at_least: 4 });
    };
    let length = be32(prefix);
    if length == 0 {
        return Ok(Decoded::Done {
            value: Message::KeepAlive,
            used: 4,
        });
    }
    let max = max_message_length(pieces);
    if length > max {
        return Err(Error::TooLong { length, max });
    }
    let Some(&id) = input.get(4) else {
        return Ok(Decoded::NeedMore { at_least: 5 });
    };
    check_length(id, length, pieces)?;
    let used = 4 + length as usize;
    let Some(body) = input.get(5..used) else {
        return Ok(Decoded::NeedMore { at_least: used });
    };
    let value = parse_body(id, body, pieces)?;
    Ok(Decoded::Done { value, used })
}

/// Refuses an unknown id, and a length prefix its id cannot have.
fn check_length(id: u8, length: u32, pieces: u32) -> Result<(), Error> {
    let fits = match id {
        CHOKE | UNCHOKE | INTERESTED | NOT_INTERESTED => length == 1,
        HAVE => length == 5,
        BITFIELD => length == 1 + pieces.div_ceil(8),
        REQUEST | CANCEL => length == 13,
        PIECE => {
            if length > 9 + MAX_BLOCK {
                return Err(Error::BadBlockLength(length - 9));
            }
            length > 9
        }
        PORT => length == 3,
        EXTENDED => (2..=2 + MAX_EXTENDED_PAYLOAD).contains(&length),
        _ => return Err(Error::UnknownId(id)),
    };
    if id == BITFIELD && !fits {
        return Err(Error::BitfieldLength {
            length: length as usize - 1,
            expected: bitfield_len(pieces),
        });
    }
    if fits {
        Ok(())
    } else {
        Err(Error::BadLength { id, length })
    }
}

/// The message of id `id` from its `body`, whose length `check_length`
/// accepted.
fn parse_body(id: u8, body: &[u8], pieces: u32) -> Result<Message<'_>, Error> {
    let piece = |at: usize| {
        let index = be32(&body[at..]);
        if index < pieces {
            Ok(index)
        } else {
            Err(Error::PieceOutOfRange { index, pieces })
        }
    };
    let block_length = |at: usize| match be32(&body[at..]) {
        length @ 1..=MAX_BLOCK => Ok(length),
        length => Err(Error::BadBlockLength(length)),
    };
    Ok(match id {
        CHOKE => Message::Choke,
        UNCHOKE => Message::Unchoke,
        INTERESTED => Message::Interested,
        NOT_INTERESTED => Message::NotInterested,
        HAVE => Message::Have { index: piece(0)? },
        BITFIELD => Message::Bitfield(Bitfield::from_bytes(body, pieces)?),
        REQUEST => Message::Request {
            index: piece(0)?,
            begin: be32(&body[4..]),
            length: block_length(8)?,
        },
        CANCEL => Message::Cancel {
            index: piece(0)?,
            begin: be32(&body[4..]),
            length: block_length(8)?,
        },
        PIECE => Message::Piece {
            index: piece(0)?,
            begin: be32(&body[4..]),
            block: &body[8..],
        },
        PORT => Message::Port(u16::from_be_bytes([body[0], body[1]])),
        EXTENDED => Message::Extended {
            id: body[0],
            payload: &body[1..],
        },
        _ => return Err(Error::UnknownId(id)),
    })
}

/// The big-endian `u32` at the start of `bytes`, which callers have
/// checked holds at least 4.
fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Message<'_> {
    /// The message on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the message on the wire to `out`. Blocks, bitfields and
    /// payloads are ours, far under 4 GiB.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let head = |out: &mut Vec<u8>, id: u8, body: usize| {
            let length = u32::try_from(1 + body).expect("a message body under 4 GiB");
            out.extend_from_slice(&length.to_be_bytes());
            out.push(id);
        };
        let three = |out: &mut Vec<u8>, id: u8, a: u32, b: u32, c: u32| {
            head(out, id, 12);
            for n in [a, b, c] {
                out.extend_from_slice(&n.to_be_bytes());
            }
        };
        match self {
            Message::KeepAlive => out.extend_from_slice(&[0; 4]),
            Message::Choke => head(out, CHOKE, 0),
            Message::Unchoke => head(out, UNCHOKE, 0),
            Message::Interested => head(out, INTERESTED, 0),
            Message::NotInterested => head(out, NOT_INTERESTED, 0),
            Message::Have { index } => {
                head(out, HAVE, 4);
                out.extend_from_slice(&index.to_be_bytes());
            }
            Message::Bitfield(bits) => {
                head(out, BITFIELD, bits.as_bytes().len());
                out.extend_from_slice(bits.as_bytes());
            }
            Message::Request {
                index,
                begin,
                length,
            } => three(out, REQUEST, *index, *begin, *length),
            Message::Cancel {
                index,
                begin,
                length,
            } => three(out, CANCEL, *index, *begin, *length),
            Message::Piece {
                index,
                begin,
                block,
            } => {
                head(out, PIECE, 8 + block.len());
                out.extend_from_slice(&index.to_be_bytes());
                out.extend_from_slice(&begin.to_be_bytes());
                out.extend_from_slice(block);
            }
            Message::Port(port) => {
                head(out, PORT, 2);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Message::Extended { id, payload } => {
                head(out, EXTENDED, 1 + payload.len());
                out.push(*id);
                out.extend_from_slice(payload);
            }
        }
    }
}

/// The extension handshake (BEP 10), the payload of extended message 0:
/// which extensions the sender speaks and what it calls them, who it is,
/// and how many requests it will queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// `m`: extension names and the message ids the sender wants them
    /// sent with, in name order; names with id 0 (disabled) or an id
    /// outside 1 to 255 are left out.
    pub extensions: Vec<(String, u8)>,
    /// `v`: the client's name and version, when it is UTF-8 free of
    /// control characters (so it can be shown as is) and at most
    /// [`MAX_CLIENT_NAME`] bytes.
    pub client: Option<String>,
    /// `reqq`: how many outstanding requests the sender queues, clamped to
    /// 1 to [`MAX_PEER_REQQ`].
    pub reqq: Option<u32>,
    /// `p`: the port the sender listens on, when it is 1 to 65535.
    pub port: Option<u16>,
}

/// The longest client name kept from a peer's `v`: real ones are under 40
/// bytes, and a longer one only fills logs.
pub const MAX_CLIENT_NAME: usize = 64;

impl ExtensionHandshake {
    /// Ours: no extension yet, our name, [`OUR_REQQ`], and our listening
    /// port when we have one.
    pub fn ours(port: Option<u16>) -> ExtensionHandshake {
        ExtensionHandshake {
            extensions: Vec::new(),
            client: Some(CLIENT_NAME.to_string()),
            reqq: Some(OUR_REQQ),
            port,
        }
    }

    /// The bencoded dictionary, the payload of an extended message with
    /// id [`EXTENDED_HANDSHAKE_ID`].
    pub fn encode(&self) -> Vec<u8> {
        let m = self
            .extensions
            .iter()
            .map(|(name, id)| (name.as_bytes(), Value::Int(i64::from(*id)).into()))
            .collect();
        let mut entries: Vec<(&[u8], Node)> = vec![(b"m", Value::Dict(m).into())];
        if let Some(port) = self.port {
            entries.push((b"p", Value::Int(i64::from(port)).into()));
        }
        if let Some(reqq) = self.reqq {
            entries.push((b"reqq", Value::Int(i64::from(reqq)).into()));
        }
        if let Some(client) = &self.client {
            entries.push((b"v", Value::Bytes(client.as_bytes()).into()));
        }
        bencode::encode(&Value::Dict(entries))
    }

    /// A peer's extension handshake. Only its shape is required (a
    /// bencoded dictionary of at most [`MAX_EXTENDED_PAYLOAD`] bytes);
    /// keys that are missing, of the wrong type or out of range are left
    /// out, as are keys we do not read (`yourip`, `ipv4`, `metadata_size`,
    /// …), since BEP 10 lets every key be absent.
    pub fn parse(payload: &[u8]) -> Result<ExtensionHandshake, Error> {
        let node = bencode::decode(payload, MAX_EXTENDED_PAYLOAD as usize)
            .map_err(Error::ExtensionHandshake)?;
        if node.value.as_dict().is_none() {
            return Err(Error::ExtensionHandshakeNotDict);
        }
        let int = |key: &[u8]| node.get(key).and_then(|n| n.value.as_int());
        let extensions = node
            .get(b"m")
            .and_then(|m| m.value.as_dict())
            .unwrap_or_default()
            .iter()
            .filter_map(|(name, id)| {
                let id = u8::try_from(id.value.as_int()?)
                    .ok()
                    .filter(|&id| id != 0)?;
                Some((String::from_utf8(name.to_vec()).ok()?, id))
            })
            .collect();
        let client = node
            .get(b"v")
            .and_then(|v| v.value.as_bytes())
            .filter(|v| v.len() <= MAX_CLIENT_NAME)
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| !v.chars().any(char::is_control))
            .map(str::to_string);
        Ok(ExtensionHandshake {
            extensions,
            client,
            reqq: int(b"reqq").map(|n| n.clamp(1, i64::from(MAX_PEER_REQQ)) as u32),
            port: int(b"p")
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0),
        })
    }

    /// The message id the sender wants extension `name` sent with.
    pub fn extension_id(&self, name: &str) -> Option<u8> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| *id)
    }

    /// How many requests to keep outstanding with the sender at most: its
    /// `reqq`, or [`DEFAULT_PEER_REQQ`] when it did not say.
    pub fn max_outstanding(&self) -> u32 {
        self.reqq.unwrap_or(DEFAULT_PEER_REQQ)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: [u8; 20] = [0xab; 20];
    const OUR_ID: [u8; 20] = *b"-PF0100-ourownpeerid";
    const THEIR_ID: [u8; 20] = *b"-qB4650-theirpeerid!";

    /// Every message once, for a torrent of 20 pieces.
    fn samples(block: &[u8]) -> Vec<Message<'_>> {
        let mut bits = Bitfield::new(20);
        for i in [0, 7, 8, 19] {
            bits.set(i, true);
        }
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have { index: 19 },
            Message::Bitfield(bits),
            Message::Request {
                index: 3,
                begin: 16384,
                length: MAX_BLOCK,
            },
            Message::Piece {
                index: 3,
                begin: 16384,
                block,
            },
            Message::Cancel {
                index: 3,
                begin: 0,
                length: 1,
            },
            Message::Port(6881),
            Message::Extended {
                id: 2,
                payload: b"d8:msg_typei0e5:piecei0ee",
            },
            Message::Extended {
                id: 0,
                payload: b"",
            },
        ]
    }

    fn decode_whole(bytes: &[u8], pieces: u32) -> Result<Message<'_>, Error> {
        match decode(bytes, pieces)? {
            Decoded::Done { value, used } => {
                assert_eq!(used, bytes.len());
                Ok(value)
            }
            Decoded::NeedMore { at_least } => panic!("needs {at_least} of {}", bytes.len()),
        }
    }

    #[test]
    fn every_message_round_trips() {
        let block = vec![7u8; MAX_BLOCK as usize];
        for message in samples(&block) {
            let bytes = message.encode();
            assert_eq!(decode_whole(&bytes, 20), Ok(message.clone()), "{message:?}");
        }
    }

    #[test]
    fn messages_have_their_bep_3_bytes() {
        assert_eq!(Message::KeepAlive.encode(), [0, 0, 0, 0]);
        assert_eq!(Message::Interested.encode(), [0, 0, 0, 1, 2]);
        assert_eq!(
            Message::Have { index: 0x0102_0304 }.encode(),
            [0, 0, 0, 5, 4, 1, 2, 3, 4]
        );
        assert_eq!(
            Message::Request {
                index: 1,
                begin: 0x4000,
                length: 0x4000
            }
            .encode(),
            [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
        );
        assert_eq!(
            Message::Piece {
                index: 1,
                begin: 2,
                block: b"xy"
            }
            .encode(),
            [0, 0, 0, 11, 7, 0, 0, 0, 1, 0, 0, 0, 2, b'x', b'y']
        );
        assert_eq!(Message::Port(6881).encode(), [0, 0, 0, 3, 9, 0x1a, 0xe1]);
    }

    #[test]
    fn truncated_input_needs_more_at_every_split() {
        let block = vec![1u8; 100];
        for message in samples(&block) {
            let bytes = message.encode();
            for cut in 0..bytes.len() {
                match decode(&bytes[..cut], 20) {
                    Ok(Decoded::NeedMore { at_least }) => {
                        assert!(
                            at_least > cut && at_least <= bytes.len(),
                            "{message:?} {cut}"
                        );
                        if cut >= 5 {
                            assert_eq!(at_least, bytes.len());
                        }
                    }
                    other => panic!("{message:?} cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn messages_back_to_back_are_read_one_at_a_time() {
        let block = vec![9u8; 30];
        let messages = samples(&block);
        let mut stream = Vec::new();
        messages.iter().for_each(|m| m.encode_into(&mut stream));
        let mut rest = &stream[..];
        for message in &messages {
            let Ok(Decoded::Done { value, used }) = decode(rest, 20) else {
                panic!("{message:?}");
            };
            assert_eq!(&value, message);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn hostile_length_prefixes_are_refused_at_four_bytes() {
        let max = max_message_length(20);
        assert_eq!(max, 2 + MAX_EXTENDED_PAYLOAD);
        for length in [max + 1, 1 << 20, u32::MAX] {
            assert_eq!(
                decode(&length.to_be_bytes(), 20),
                Err(Error::TooLong { length, max })
            );
        }
        // A large torrent's bitfield raises the bound, and only it.
        assert_eq!(max_message_length(8_000_000), 1_000_001);
        let mut long_piece = 1_000_001u32.to_be_bytes().to_vec();
        long_piece.push(PIECE);
        assert_eq!(
            decode(&long_piece, 8_000_000),
            Err(Error::BadBlockLength(1_000_001 - 9))
        );
    }

    #[test]
    fn oversize_blocks_are_refused_before_their_body() {
        // A piece block one byte over, refused at its id.
        let length = 9 + MAX_BLOCK + 1;
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.push(PIECE);
        assert_eq!(
            decode(&bytes, 20),
            Err(Error::BadBlockLength(MAX_BLOCK + 1))
        );
        for length in [0, MAX_BLOCK + 1, u32::MAX] {
            for id in [REQUEST, CANCEL] {
                let mut bytes = vec![0, 0, 0, 13, id, 0, 0, 0, 1, 0, 0, 0, 0];
                bytes.extend_from_slice(&length.to_be_bytes());
                assert_eq!(decode(&bytes, 20), Err(Error::BadBlockLength(length)));
            }
        }
        // An empty piece block asks nothing and answers nothing.
        assert_eq!(
            decode(&[0, 0, 0, 9, PIECE, 0, 0, 0, 0, 0, 0, 0, 0], 20),
            Err(Error::BadLength {
                id: PIECE,
                length: 9
            })
        );
    }

    #[test]
    fn lengths_that_do_not_fit_their_id_are_refused() {
        for (id, length) in [
            (CHOKE, 2u32),
            (HAVE, 4),
            (HAVE, 6),
            (REQUEST, 12),
            (PORT, 5),
            (EXTENDED, 1),
        ] {
            let mut bytes = length.to_be_bytes().to_vec();
            bytes.push(id);
            assert_eq!(decode(&bytes, 20), Err(Error::BadLength { id, length }));
        }
    }

    #[test]
    fn unknown_ids_are_refused_fast_extension_included() {
        // 13 to 17 are BEP 6's suggest, have all, have none, reject, allowed fast.
        for id in [10, 13, 14, 15, 16, 17, 19, 21, 255] {
            assert_eq!(decode(&[0, 0, 0, 1, id], 20), Err(Error::UnknownId(id)));
        }
    }

    #[test]
    fn piece_indexes_past_the_last_are_refused() {
        let have = Message::Have { index: 20 }.encode();
        assert_eq!(
            decode(&have, 20),
            Err(Error::PieceOutOfRange {
                index: 20,
                pieces: 20
            })
        );
        let piece = Message::Piece {
            index: u32::MAX,
            begin: 0,
            block: b"x",
        }
        .encode();
        assert!(matches!(
            decode(&piece, 20),
            Err(Error::PieceOutOfRange { .. })
        ));
    }

    #[test]
    fn bitfields_must_have_the_exact_length_and_zero_spare_bits() {
        // 20 pieces: 3 bytes, the last 4 bits spare.
        for body in [&[0xff, 0xff][..], &[0xff, 0xff, 0xf0, 0x00]] {
            let mut bytes = (1 + body.len() as u32).to_be_bytes().to_vec();
            bytes.push(BITFIELD);
            bytes.extend_from_slice(body);
            assert_eq!(
                decode(&bytes[..5], 20),
                Err(Error::BitfieldLength {
                    length: body.len(),
                    expected: 3
                })
            );
        }
        for last in [0x01, 0x08, 0x0f] {
            assert_eq!(
                decode(&[0, 0, 0, 4, BITFIELD, 0xff, 0xff, 0xf0 | last], 20),
                Err(Error::SpareBits)
            );
        }
        let Ok(Message::Bitfield(bits)) =
            decode_whole(&[0, 0, 0, 4, BITFIELD, 0xff, 0xff, 0xf0], 20)
        else {
            panic!("a full bitfield");
        };
        assert!(bits.is_complete());
        // No spare bit when the count is a multiple of 8; none at all for 0 pieces.
        assert!(Bitfield::from_bytes(&[0xff], 8).is_ok());
        assert!(Bitfield::from_bytes(&[], 0).is_ok());
        assert_eq!(Bitfield::from_bytes(&[0x80], 1).map(|b| b.count()), Ok(1));
        assert_eq!(Bitfield::from_bytes(&[0x40], 1), Err(Error::SpareBits));
    }

    #[test]
    fn bitfield_sets_gets_and_counts() {
        let mut bits = Bitfield::new(10);
        assert_eq!(bits.as_bytes(), [0, 0]);
        bits.set(0, true);
        bits.set(9, true);
        bits.set(4, true);
        bits.set(4, false);
        assert_eq!(bits.as_bytes(), [0x80, 0x40]);
        assert!(bits.get(0) && bits.get(9) && !bits.get(4) && !bits.get(10));
        assert_eq!((bits.count(), bits.pieces()), (2, 10));
        assert_eq!(Bitfield::from_bytes(bits.as_bytes(), 10), Ok(bits));
    }

    fn peer_handshake() -> [u8; HANDSHAKE_LEN] {
        let mut theirs = Handshake::ours(HASH, THEIR_ID);
        // libtorrent: extensions, DHT and the fast extension.
        theirs.reserved = [0, 0, 0, 0, 0, 0x10, 0, 0x05];
        theirs.encode()
    }

    #[test]
    fn our_handshake_sets_only_the_extension_bit() {
        let ours = Handshake::ours(HASH, OUR_ID);
        let bytes = ours.encode();
        assert_eq!(&bytes[..20], b"\x13BitTorrent protocol");
        assert_eq!(&bytes[20..28], [0, 0, 0, 0, 0, 0x10, 0, 0]);
        assert_eq!((&bytes[28..48], &bytes[48..]), (&HASH[..], &OUR_ID[..]));
        assert!(ours.supports_extensions());
    }

    #[test]
    fn a_peer_handshake_is_read_after_68_bytes_and_needs_more_before() {
        let bytes = peer_handshake();
        for cut in 0..HANDSHAKE_LEN {
            assert_eq!(
                Handshake::parse(&bytes[..cut], &HASH, &OUR_ID),
                Ok(Decoded::NeedMore { at_least: 68 })
            );
        }
        let mut stream = bytes.to_vec();
        stream.extend_from_slice(&Message::Unchoke.encode());
        let Ok(Decoded::Done { value, used }) = Handshake::parse(&stream, &HASH, &OUR_ID) else {
            panic!("a whole handshake");
        };
        assert_eq!((value.peer_id, used), (THEIR_ID, 68));
        assert!(value.supports_extensions());
        assert_eq!(value.encode(), bytes);
    }

    #[test]
    fn a_wrong_protocol_string_is_refused_at_its_first_wrong_byte() {
        for offset in 0..20 {
            let mut bytes = peer_handshake();
            bytes[offset] ^= 0x20;
            let expected = Err(Error::NotBitTorrent {
                offset,
                byte: bytes[offset],
            });
            assert_eq!(
                Handshake::parse(&bytes[..=offset], &HASH, &OUR_ID),
                expected
            );
            assert_eq!(Handshake::parse(&bytes, &HASH, &OUR_ID), expected);
        }
        // An encrypted (BEP 8, MSE) opening starts with random key bytes.
        assert!(matches!(
            Handshake::parse(&[0x8e, 0x41], &HASH, &OUR_ID),
            Err(Error::NotBitTorrent { offset: 0, .. })
        ));
        assert!(matches!(
            Handshake::parse(b"GET / HTTP/1.1\r\n", &HASH, &OUR_ID),
            Err(Error::NotBitTorrent { offset: 0, .. })
        ));
    }

    #[test]
    fn another_info_hash_is_refused_at_its_first_wrong_byte() {
        let mut bytes = peer_handshake();
        bytes[30] = 0;
        assert_eq!(
            Handshake::parse(&bytes[..30], &HASH, &OUR_ID),
            Ok(Decoded::NeedMore { at_least: 68 })
        );
        assert_eq!(
            Handshake::parse(&bytes[..31], &HASH, &OUR_ID),
            Err(Error::OtherInfoHash)
        );
        assert_eq!(
            Handshake::parse(&bytes, &HASH, &OUR_ID),
            Err(Error::OtherInfoHash)
        );
    }

    #[test]
    fn our_own_peer_id_is_a_connection_to_ourselves() {
        let bytes = Handshake::ours(HASH, OUR_ID).encode();
        assert_eq!(
            Handshake::parse(&bytes, &HASH, &OUR_ID),
            Err(Error::OwnPeerId)
        );
        assert!(matches!(
            Handshake::parse(&bytes, &HASH, &THEIR_ID),
            Ok(Decoded::Done { used: 68, .. })
        ));
    }

    #[test]
    fn peer_ids_have_our_prefix_and_differ() {
        let (a, b) = (new_peer_id(), new_peer_id());
        assert_eq!(&a[..8], b"-PF0100-");
        assert_eq!(&b[..8], b"-PF0100-");
        assert_ne!(a, b);
    }

    #[test]
    fn our_extension_handshake_is_bencode_with_name_and_queue() {
        let ours = ExtensionHandshake::ours(Some(6881));
        let bytes = ours.encode();
        let expected = format!(
            "d1:mde1:pi6881e4:reqqi{OUR_REQQ}e1:v{}:{}e",
            CLIENT_NAME.len(),
            CLIENT_NAME
        );
        assert_eq!(String::from_utf8_lossy(&bytes), expected);
        // Read back as a peer's, our 2048 is clamped like any other: we keep
        // at most MAX_PEER_REQQ requests out to one peer.
        let clamped = |mut h: ExtensionHandshake| {
            h.reqq = Some(OUR_REQQ.min(MAX_PEER_REQQ));
            h
        };
        assert_eq!(ExtensionHandshake::parse(&bytes), Ok(clamped(ours)));
        let without_port = ExtensionHandshake::ours(None);
        assert_eq!(
            ExtensionHandshake::parse(&without_port.encode()),
            Ok(clamped(without_port))
        );
    }

    #[test]
    fn a_qbittorrent_extension_handshake_is_read() {
        let payload = b"d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e4:reqqi500e1:v13:qBittorrent/4e";
        let mut message = Vec::new();
        Message::Extended {
            id: EXTENDED_HANDSHAKE_ID,
            payload,
        }
        .encode_into(&mut message);
        let Ok(Message::Extended { id: 0, payload }) = decode_whole(&message, 20) else {
            panic!("an extended message");
        };
        let theirs = ExtensionHandshake::parse(payload).expect("a valid handshake");
        assert_eq!(
            theirs,
            ExtensionHandshake {
                extensions: vec![("ut_metadata".into(), 2), ("ut_pex".into(), 1)],
                client: Some("qBittorrent/4".into()),
                reqq: Some(500),
                port: Some(6881),
            }
        );
        assert_eq!(theirs.extension_id("ut_pex"), Some(1));
        assert_eq!(theirs.extension_id("lt_donthave"), None);
        assert_eq!(theirs.max_outstanding(), 500);
    }

    #[test]
    fn hostile_extension_handshake_values_are_left_out_or_clamped() {
        let parse = |text: &[u8]| ExtensionHandshake::parse(text);
        let odd = parse(
            b"d1:md1:ai0e1:bi256e1:ci-1e1:d3:abc1:ei7ee1:pi70000e4:reqqi99999999e1:v3:\x1b[2e",
        )
        .expect("a dictionary");
        assert_eq!(odd.extensions, vec![("e".to_string(), 7)]);
        assert_eq!(
            (odd.port, odd.reqq, odd.client),
            (None, Some(MAX_PEER_REQQ), None)
        );
        assert_eq!(parse(b"d4:reqqi0ee").map(|h| h.max_outstanding()), Ok(1));
        assert_eq!(
            parse(b"de").map(|h| h.max_outstanding()),
            Ok(DEFAULT_PEER_REQQ)
        );
        // yourip and unknown keys are ignored.
        assert!(parse(b"d1:v1:x6:yourip4:\x7f\x00\x00\x01e").is_ok());
        assert_eq!(parse(b"le"), Err(Error::ExtensionHandshakeNotDict));
        assert!(matches!(parse(b"d1:v"), Err(Error::ExtensionHandshake(_))));
        assert!(matches!(parse(b""), Err(Error::ExtensionHandshake(_))));
    }
}
