//! What an announce tells a tracker ([`Announce`]) and the URL an HTTP
//! tracker is asked with ([`announce_url`], BEP 3 with BEP 23's
//! `compact=1`, and the `trackerid` a tracker gave, with
//! [`announce_url_with_id`]).
//!
//! Owns the parameters and their encoding. Leaves the UDP form of the same
//! announce to [`super::udp`], and choosing the peer id, the key and the
//! byte counts to the swarm that knows them.

use std::fmt::Write;

/// Why we announce: BEP 3's `event`, or none for a regular re-announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A regular announce, at the interval the tracker asked for.
    None,
    /// The first announce of a download.
    Started,
    /// The download just finished (sent once, not when starting complete).
    Completed,
    /// We are leaving the swarm.
    Stopped,
}

impl Event {
    /// The `event` parameter of the HTTP announce, absent for
    /// [`Event::None`].
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// The event's number in a UDP announce (BEP 15): none 0, completed 1,
    /// started 2, stopped 3.
    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }
}

/// One announce: who we are, what we have, and how many peers we want.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The SHA-1 of the torrent's `info` dictionary.
    pub info_hash: [u8; 20],
    /// Our peer id, the same for every announce of a session.
    pub peer_id: [u8; 20],
    /// The port we accept peer connections on.
    pub port: u16,
    /// Bytes sent to peers since the `started` announce.
    pub uploaded: u64,
    /// Bytes received from peers since the `started` announce.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// Why we announce.
    pub event: Event,
    /// How many peers we want; `None` leaves it to the tracker (HTTP: the
    /// parameter is left out; UDP: -1).
    pub numwant: Option<u32>,
    /// A number that stays the same for a session, so that a tracker can
    /// recognise us when our address changes (sent in hex over HTTP).
    pub key: u32,
}

/// The HTTP announce URL: `tracker` with the announce's parameters added to
/// its query (after `&` when it already has one, as private trackers'
/// `?passkey=…` do), before any fragment.
///
/// The info-hash and the peer id are binary, so every byte outside RFC
/// 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`) is percent-encoded on its
/// own: trackers compare the decoded 20 bytes, and a byte left raw or
/// decoded as UTF-8 would name another torrent.
pub fn announce_url(tracker: &str, announce: &Announce) -> String {
    announce_url_with_id(tracker, announce, None)
}

/// [`announce_url`], with `trackerid` set to `tracker_id` when there is
/// one: BEP 3 asks a client to send back the `tracker id` of the
/// tracker's previous answer (percent-encoded, as it may be binary).
pub fn announce_url_with_id(
    tracker: &str,
    announce: &Announce,
    tracker_id: Option<&[u8]>,
) -> String {
    let (base, fragment) = match tracker.find('#') {
        Some(at) => tracker.split_at(at),
        None => (tracker, ""),
    };
    let mut url = String::with_capacity(base.len() + 256);
    url.push_str(base);
    if !base.contains('?') {
        url.push('?');
    } else if !base.ends_with('?') && !base.ends_with('&') {
        url.push('&');
    }
    url.push_str("info_hash=");
    percent_encode(&announce.info_hash, &mut url);
    url.push_str("&peer_id=");
    percent_encode(&announce.peer_id, &mut url);
    // Writing to a String cannot fail.
    let _ = write!(
        url,
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1",
        announce.port, announce.uploaded, announce.downloaded, announce.left
    );
    if let Some(event) = announce.event.as_str() {
        let _ = write!(url, "&event={event}");
    }
    if let Some(numwant) = announce.numwant {
        let _ = write!(url, "&numwant={numwant}");
    }
    let _ = write!(url, "&key={:08x}", announce.key);
    if let Some(id) = tracker_id {
        url.push_str("&trackerid=");
        percent_encode(id, &mut url);
    }
    url.push_str(fragment);
    url
}

/// Appends `bytes` to `out`, each byte outside RFC 3986's unreserved set
/// as `%XX` (upper-case hex).
pub fn percent_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Announce {
        let mut info_hash = [0u8; 20];
        info_hash[..6].copy_from_slice(&[0x00, b'A', b'~', b' ', 0xff, b'%']);
        Announce {
            info_hash,
            peer_id: *b"-PF0001-abcdefghijkl",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Event::Started,
            numwant: Some(50),
            key: 0xbeef,
        }
    }

    #[test]
    fn a_binary_info_hash_is_encoded_byte_by_byte_keeping_unreserved() {
        let url = announce_url("http://t.example/announce", &sample());
        assert_eq!(
            url,
            "http://t.example/announce?info_hash=%00A~%20%FF%25%00%00%00%00%00%00%00%00%00%00%00%00%00%00\
             &peer_id=-PF0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1\
             &event=started&numwant=50&key=0000beef"
        );
    }

    #[test]
    fn an_existing_query_is_kept_and_the_fragment_stays_last() {
        let mut a = sample();
        a.event = Event::None;
        a.numwant = None;
        let url = announce_url("https://t.example/a?passkey=x1#frag", &a);
        assert!(
            url.starts_with("https://t.example/a?passkey=x1&info_hash=%00A~"),
            "{url}"
        );
        assert!(url.ends_with("&compact=1&key=0000beef#frag"), "{url}");
        assert!(!url.contains("event=") && !url.contains("numwant="));
        let url = announce_url("http://t.example/a?", &a);
        assert!(url.starts_with("http://t.example/a?info_hash="), "{url}");
    }

    #[test]
    fn a_tracker_id_is_sent_back_encoded_before_the_fragment() {
        let url = announce_url_with_id("http://t.example/a#f", &sample(), Some(b"id 7/\xff"));
        assert!(
            url.ends_with("&key=0000beef&trackerid=id%207%2F%FF#f"),
            "{url}"
        );
        assert_eq!(
            announce_url_with_id("http://t.example/a", &sample(), None),
            announce_url("http://t.example/a", &sample())
        );
    }

    #[test]
    fn every_byte_value_round_trips_through_percent_decoding() {
        let all: Vec<u8> = (0..=255).collect();
        let mut text = String::new();
        percent_encode(&all, &mut text);
        assert_eq!(crate::http::request::percent_decode(&text), all);
        assert!(text.bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn udp_event_codes_follow_bep_15() {
        let codes = [
            Event::None,
            Event::Completed,
            Event::Started,
            Event::Stopped,
        ]
        .map(Event::udp_code);
        assert_eq!(codes, [0, 1, 2, 3]);
    }
}
