//! The bencoded answer of an HTTP tracker (BEP 3, BEP 23's compact peers,
//! BEP 7's `peers6`), parsed into an [`HttpAnswer`] that holds at most
//! [`MAX_PEERS`] distinct, usable peers and an interval within
//! [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
//!
//! Owns the parsing and the bounds, and the compact peer formats that the
//! UDP answer shares ([`compact_peers`]). Leaves fetching the answer to
//! the HTTP client, and acting on it (when to ask again, which peers to
//! dial) to the swarm.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::bencode::{self, Node, Value};

/// Peers kept from one answer. A client dials a few dozen peers at a
/// time and announces again for more; trackers give 50 by default and
/// cap `numwant` at about 200. Keeping no more bounds what a hostile
/// tracker's huge list costs us (the rest is not even looked at).
pub const MAX_PEERS: usize = 200;

/// The shortest interval between announces obeyed: a tracker asking for
/// less (or for 0, or a negative one) would have us announce in a loop.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);

/// The longest interval between announces obeyed: a swarm changes, and a
/// tracker asking for days (or `i64::MAX` seconds) would leave us with
/// stale peers; asking again sooner than told costs the tracker little.
pub const MAX_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// The largest answer parsed. 200 compact peers take 1.2 KB and 200 peer
/// dictionaries about 20 KB; 256 KiB leaves room for trackers that send
/// more than asked while bounding the decoded values' memory (some 50
/// times the text, see `MAX_METAINFO_BYTES`).
pub const MAX_RESPONSE_BYTES: usize = 256 << 10;

/// The longest `failure reason` or `warning message` kept, in bytes: they
/// are shown to the user, and a tracker could send kilobytes.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// A peer a tracker named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its peer id, when the tracker gave one (dictionary peers only).
    pub id: Option<[u8; 20]>,
}

/// What an HTTP tracker answered, bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// When to announce again, clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    pub interval: Duration,
    /// `min interval`: never announce sooner than this, clamped the same
    /// way and to at most `interval`.
    pub min_interval: Option<Duration>,
    /// Seeders, when given.
    pub complete: Option<u64>,
    /// Leechers, when given.
    pub incomplete: Option<u64>,
    /// `warning message`: the announce worked but the tracker has
    /// something to say. At most [`MAX_MESSAGE_BYTES`], lossy UTF-8.
    pub warning: Option<String>,
    /// `tracker id`, to send back on the next announce.
    pub tracker_id: Option<Vec<u8>>,
    /// Distinct peers with a port and an address, at most [`MAX_PEERS`],
    /// IPv4 ones (`peers`) first.
    pub peers: Vec<Peer>,
}

/// Why an HTTP tracker's answer gives no peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Not strict bencode, or over [`MAX_RESPONSE_BYTES`].
    Bencode(bencode::Error),
    /// The top value is not a dictionary.
    NotADictionary,
    /// The tracker refused: its `failure reason`, at most
    /// [`MAX_MESSAGE_BYTES`], lossy UTF-8 (shown escaped).
    Failure(String),
    /// A required key is missing (`interval`).
    Missing(&'static str),
    /// A key holds the wrong type (`interval` not an integer, `peers`
    /// neither a string nor a list).
    Invalid(&'static str),
    /// A compact peer list whose length is not a whole number of records:
    /// cut short or corrupt, so none of it is trusted.
    Truncated {
        /// `peers` or `peers6`.
        key: &'static str,
        /// Its length in bytes.
        length: usize,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Bencode(e) => write!(f, "tracker answer is not bencode: {e}"),
            HttpError::NotADictionary => f.write_str("tracker answer is not a dictionary"),
            // Debug formatting escapes control characters: the tracker's
            // text cannot reach the terminal as written.
            HttpError::Failure(text) => write!(f, "tracker refused: {text:?}"),
            HttpError::Missing(key) => write!(f, "tracker answer has no '{key}'"),
            HttpError::Invalid(key) => write!(f, "tracker answer's '{key}' has the wrong type"),
            HttpError::Truncated { key, length } => {
                write!(
                    f,
                    "tracker answer's '{key}' is {length} bytes, not whole peers"
                )
            }
        }
    }
}

impl std::error::Error for HttpError {}

impl From<bencode::Error> for HttpError {
    fn from(e: bencode::Error) -> HttpError {
        HttpError::Bencode(e)
    }
}

impl HttpAnswer {
    /// Parses an HTTP tracker's answer body.
    pub fn parse(body: &[u8]) -> Result<HttpAnswer, HttpError> {
        let top = bencode::decode(body, MAX_RESPONSE_BYTES)?;
        if top.value.as_dict().is_none() {
            return Err(HttpError::NotADictionary);
        }
        if let Some(reason) = top.get(b"failure reason") {
            let text = reason.value.as_bytes().unwrap_or(b"(not a string)");
            return Err(HttpError::Failure(message(text)));
        }
        let interval = match top.get(b"interval") {
            Some(node) => clamp_interval(int(node, "interval")?),
            None => return Err(HttpError::Missing("interval")),
        };
        let min_interval = match top.get(b"min interval") {
            Some(node) => Some(clamp_interval(int(node, "min interval")?).min(interval)),
            None => None,
        };
        let mut peers = Peers::default();
        if let Some(node) = top.get(b"peers") {
            match &node.value {
                Value::Bytes(bytes) => {
                    compact_peers(bytes, Family::V4, &mut peers).map_err(|length| {
                        HttpError::Truncated {
                            key: "peers",
                            length,
                        }
                    })?
                }
                Value::List(items) => dictionary_peers(items, &mut peers),
                _ => return Err(HttpError::Invalid("peers")),
            }
        }
        if let Some(node) = top.get(b"peers6") {
            let bytes = node.value.as_bytes().ok_or(HttpError::Invalid("peers6"))?;
            compact_peers(bytes, Family::V6, &mut peers).map_err(|length| {
                HttpError::Truncated {
                    key: "peers6",
                    length,
                }
            })?;
        }
        Ok(HttpAnswer {
            interval,
            min_interval,
            complete: count(top.get(b"complete")),
            incomplete: count(top.get(b"incomplete")),
            warning: top
                .get(b"warning message")
                .and_then(|n| n.value.as_bytes())
                .map(message),
            tracker_id: top
                .get(b"tracker id")
                .and_then(|n| n.value.as_bytes())
                .map(<[u8]>::to_vec),
            peers: peers.list,
        })
    }
}

/// The integer at `node`, or [`HttpError::Invalid`] naming `key`.
fn int(node: &Node, key: &'static str) -> Result<i64, HttpError> {
    node.value.as_int().ok_or(HttpError::Invalid(key))
}

/// A count the answer may give: a non-negative integer, else nothing (a
/// wrong count is not worth refusing the peers for).
fn count(node: Option<&Node>) -> Option<u64> {
    node?.value.as_int().and_then(|n| u64::try_from(n).ok())
}

/// Seconds from a tracker, negative or huge ones included, within
/// [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
pub fn clamp_interval(seconds: i64) -> Duration {
    let seconds = seconds.clamp(MIN_INTERVAL.as_secs() as i64, MAX_INTERVAL.as_secs() as i64);
    Duration::from_secs(seconds as u64)
}

/// A tracker's text as shown: lossy UTF-8, cut to [`MAX_MESSAGE_BYTES`]
/// (at a character boundary).
pub fn message(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_MESSAGE_BYTES)]);
    let mut text = text.into_owned();
    while text.len() > MAX_MESSAGE_BYTES {
        text.pop();
    }
    text
}

/// The peers gathered so far: distinct, usable, at most [`MAX_PEERS`].
#[derive(Default, Debug)]
pub struct Peers {
    list: Vec<Peer>,
    seen: HashSet<SocketAddr>,
}

impl Peers {
    /// Adds `peer` unless it has port 0 or an unspecified address (neither
    /// can be dialled), was already added, or [`MAX_PEERS`] are held.
    /// Returns whether there is room for more.
    pub fn add(&mut self, peer: Peer) -> bool {
        if self.list.len() >= MAX_PEERS {
            return false;
        }
        let usable = peer.addr.port() != 0 && !peer.addr.ip().is_unspecified();
        if usable && self.seen.insert(peer.addr) {
            self.list.push(peer);
        }
        self.list.len() < MAX_PEERS
    }

    /// The peers, in the order added.
    pub fn into_vec(self) -> Vec<Peer> {
        self.list
    }
}

/// The two compact peer formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// BEP 23: 4 address bytes and 2 port bytes, big-endian.
    V4,
    /// BEP 7: 16 address bytes and 2 port bytes.
    V6,
}

impl Family {
    /// Bytes per peer.
    pub fn record(self) -> usize {
        match self {
            Family::V4 => 6,
            Family::V6 => 18,
        }
    }
}

/// Adds the compact peers in `bytes` to `peers`, stopping when full. A
/// length that is not a whole number of records is refused (`Err` with the
/// length) before any peer is added.
pub fn compact_peers(bytes: &[u8], family: Family, peers: &mut Peers) -> Result<(), usize> {
    let record = family.record();
    if !bytes.len().is_multiple_of(record) {
        return Err(bytes.len());
    }
    for chunk in bytes.chunks_exact(record) {
        let (ip, port) = chunk.split_at(record - 2);
        let ip = match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            Family::V6 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(ip);
                IpAddr::V6(Ipv6Addr::from(octets))
            }
        };
        let port = u16::from_be_bytes([port[0], port[1]]);
        if !peers.add(Peer {
            addr: SocketAddr::new(ip, port),
            id: None,
        }) {
            break;
        }
    }
    Ok(())
}

/// Adds the peers of a non-compact list (`ip`, `port`, `peer id`) to
/// `peers`. Entries of the wrong shape, ports outside 1..=65535 and `ip`s
/// that are host names rather than addresses are left out: a parser does
/// not resolve names, and one bad entry is no reason to drop the others.
fn dictionary_peers(items: &[Node], peers: &mut Peers) {
    for item in items {
        let Some(ip) = item.get(b"ip").and_then(|n| n.value.as_bytes()) else {
            continue;
        };
        let Some(ip) = std::str::from_utf8(ip)
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let port = item.get(b"port").and_then(|n| n.value.as_int());
        let Some(port) = port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        let id = item
            .get(b"peer id")
            .and_then(|n| n.value.as_bytes())
            .and_then(|id| <[u8; 20]>::try_from(id).ok());
        if !peers.add(Peer {
            addr: SocketAddr::new(ip, port),
            id,
        }) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], port: u16) -> Peer {
        Peer {
            addr: SocketAddr::from((a, port)),
            id: None,
        }
    }

    #[test]
    fn compact_peers_ports_zero_and_duplicates_dropped() {
        let body = b"d8:completei5e10:incompletei7e8:intervali1800e12:min intervali900e\
                     5:peers24:\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x00\
                     \x0a\x00\x00\x01\x1a\xe1\x7f\x00\x00\x01\x00\x50e";
        let answer = HttpAnswer::parse(body).unwrap();
        assert_eq!(answer.interval, Duration::from_secs(1800));
        assert_eq!(answer.min_interval, Some(Duration::from_secs(900)));
        assert_eq!((answer.complete, answer.incomplete), (Some(5), Some(7)));
        assert_eq!(
            answer.peers,
            [v4([10, 0, 0, 1], 6881), v4([127, 0, 0, 1], 80)]
        );
    }

    #[test]
    fn compact_ipv6_peers_follow_the_ipv4_ones() {
        let mut body = b"d8:intervali60e5:peers6:\x01\x02\x03\x04\x00\x01".to_vec();
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        body.extend_from_slice(b"\x1a\xe1e");
        let answer = HttpAnswer::parse(&body).unwrap();
        let six = Peer {
            addr: "[::1]:6881".parse().unwrap(),
            id: None,
        };
        assert_eq!(answer.peers, [v4([1, 2, 3, 4], 1), six]);
    }

    #[test]
    fn dictionary_peers_keep_ids_and_skip_bad_entries() {
        let body = b"d8:intervali60e5:peersl\
            d2:ip8:10.0.0.17:peer id20:abcdefghijklmnopqrst4:porti6881ee\
            d2:ip3:::14:porti443ee\
            d2:ip11:example.org4:porti80ee\
            d2:ip8:10.0.0.24:porti70000ee\
            d2:ip8:10.0.0.24:porti-1ee\
            d2:ip8:10.0.0.34:porti0ee\
            d2:ipi5e4:porti1ee\
            i5e\
            d2:ip8:10.0.0.17:peer id3:abc4:porti6881ee\
            ee";
        let answer = HttpAnswer::parse(body).unwrap();
        let first = Peer {
            addr: "10.0.0.1:6881".parse().unwrap(),
            id: Some(*b"abcdefghijklmnopqrst"),
        };
        let second = Peer {
            addr: "[::1]:443".parse().unwrap(),
            id: None,
        };
        assert_eq!(answer.peers, [first, second]);
    }

    #[test]
    fn a_failure_reason_is_an_error_carrying_the_text_shown_escaped() {
        let err = HttpAnswer::parse(b"d14:failure reason15:bad \x1b[2Jpasskeye").unwrap_err();
        assert_eq!(err, HttpError::Failure("bad \x1b[2Jpasskey".into()));
        let shown = err.to_string();
        assert!(
            shown.contains("\\u{1b}[2J") && !shown.contains('\x1b'),
            "{shown}"
        );
        let err = HttpAnswer::parse(b"d14:failure reasoni5e8:intervali60ee").unwrap_err();
        assert_eq!(err, HttpError::Failure("(not a string)".into()));
    }

    #[test]
    fn long_messages_are_cut_and_warnings_kept() {
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let body = format!("d8:intervali60e15:warning message{}:{long}e", long.len());
        let answer = HttpAnswer::parse(body.as_bytes()).unwrap();
        let warning = answer.warning.unwrap();
        assert_eq!(warning.len(), MAX_MESSAGE_BYTES);
        assert!(answer.peers.is_empty());
        let body = format!("d14:failure reason{}:{long}e", long.len());
        let HttpError::Failure(text) = HttpAnswer::parse(body.as_bytes()).unwrap_err() else {
            panic!("not a failure");
        };
        assert!(text.len() <= MAX_MESSAGE_BYTES && text.starts_with('é'));
    }

    #[test]
    fn truncated_compact_lists_are_refused() {
        let err = HttpAnswer::parse(b"d8:intervali60e5:peers7:\x01\x02\x03\x04\x00\x01\x02e");
        assert_eq!(
            err,
            Err(HttpError::Truncated {
                key: "peers",
                length: 7
            })
        );
        let err = HttpAnswer::parse(b"d8:intervali60e6:peers66:\x01\x02\x03\x04\x00\x01e");
        assert_eq!(
            err,
            Err(HttpError::Truncated {
                key: "peers6",
                length: 6
            })
        );
    }

    #[test]
    fn huge_and_negative_numbers_are_clamped_or_ignored() {
        let body = b"d8:completei-4e10:incompletei9223372036854775807e\
                     8:intervali9223372036854775807e12:min intervali-9223372036854775808ee";
        let answer = HttpAnswer::parse(body).unwrap();
        assert_eq!(answer.interval, MAX_INTERVAL);
        assert_eq!(answer.min_interval, Some(MIN_INTERVAL));
        assert_eq!(answer.complete, None);
        assert_eq!(answer.incomplete, Some(i64::MAX as u64));
        let answer = HttpAnswer::parse(b"d8:intervali0ee").unwrap();
        assert_eq!(answer.interval, MIN_INTERVAL);
        let body = b"d8:intervali99999999999999999999ee";
        assert!(matches!(
            HttpAnswer::parse(body),
            Err(HttpError::Bencode(_))
        ));
    }

    #[test]
    fn wrong_types_are_refused_not_panicked_on() {
        for (body, expected) in [
            (&b"le"[..], HttpError::NotADictionary),
            (b"i5e", HttpError::NotADictionary),
            (b"de", HttpError::Missing("interval")),
            (b"d8:interval2:60e", HttpError::Invalid("interval")),
            (
                b"d8:intervali60e12:min intervallee",
                HttpError::Invalid("min interval"),
            ),
            (b"d8:intervali60e5:peersi5ee", HttpError::Invalid("peers")),
            (b"d8:intervali60e6:peers6lee", HttpError::Invalid("peers6")),
        ] {
            assert_eq!(HttpAnswer::parse(body), Err(expected), "{body:?}");
        }
        assert!(matches!(HttpAnswer::parse(b""), Err(HttpError::Bencode(_))));
    }

    #[test]
    fn huge_peer_lists_keep_the_first_max_peers() {
        let n = 10_000u32;
        let mut body = format!("d8:intervali60e5:peers{}:", n * 6).into_bytes();
        for i in 0..n {
            body.extend_from_slice(&i.to_be_bytes());
            body.extend_from_slice(&[0, 1]);
        }
        body.push(b'e');
        let answer = HttpAnswer::parse(&body).unwrap();
        assert_eq!(answer.peers.len(), MAX_PEERS);
        // 0.0.0.0 is unspecified: the first kept is 0.0.0.1.
        assert_eq!(answer.peers[0], v4([0, 0, 0, 1], 1));
        let too_big = vec![b'x'; MAX_RESPONSE_BYTES + 1];
        let err = HttpAnswer::parse(&too_big).unwrap_err();
        assert!(matches!(
            err,
            HttpError::Bencode(bencode::Error::TooLarge { .. })
        ));
    }
}
