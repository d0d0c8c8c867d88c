//! Asking one tracker, whatever its scheme: [`announce`] sends an
//! [`Announce`] to an `http://`, `https://` or `udp://host:port[/path]`
//! tracker and returns one [`Answer`] or one [`TrackerError`].
//!
//! Owns the choice of protocol by scheme and the reading of UDP tracker
//! URLs. Leaves the exchanges to [`super::http`] and [`super::udp`], and
//! which tracker to ask, and when, to the caller.

use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Instant;

use super::announce::Announce;
use super::answer::Answer;
use super::error::{tracker_name, BadAnswer, TrackerError};
use super::http::{http_announce, KeepGoing};
use super::udp::{run_while, UdpError, UdpTracker};
use crate::fetch::Context;

/// Announces `announce` to the tracker at `tracker_url` (`http`, `https`
/// or `udp` scheme), giving up at `deadline`, or when `ctx` is cancelled.
///
/// Blocks the calling thread. The deadline bounds connecting, sending and
/// every wait for an answer; resolving the tracker's name is the one wait
/// it cannot cut short.
pub fn announce(
    ctx: &Context,
    tracker_url: &str,
    announce: &Announce,
    deadline: Instant,
) -> Result<Answer, TrackerError> {
    let cancel = ctx.cancel_handle();
    let keep_going: KeepGoing = Arc::new(move || !cancel.is_cancelled());
    announce_with(ctx, tracker_url, None, announce, deadline, &keep_going)
}

/// [`announce`], sending back `tracker_id` (what the tracker's previous
/// answer gave) and also giving up as soon as `keep_going` says no.
pub fn announce_with(
    ctx: &Context,
    tracker_url: &str,
    tracker_id: Option<&[u8]>,
    announce: &Announce,
    deadline: Instant,
    keep_going: &KeepGoing,
) -> Result<Answer, TrackerError> {
    let shown = tracker_name(tracker_url);
    let scheme = tracker_url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https") => http_announce(
            ctx,
            tracker_url,
            &shown,
            announce,
            tracker_id,
            deadline,
            keep_going,
        ),
        Some("udp") => {
            let (host, port) = udp_host_port(tracker_url).map_err(|why| TrackerError::BadUrl {
                tracker: shown.clone(),
                why: why.to_owned(),
            })?;
            let cancel = ctx.cancel_handle();
            let keep_going = || keep_going() && !cancel.is_cancelled();
            ask_udp(&host, port, shown, announce, deadline, &keep_going)
        }
        _ => Err(TrackerError::UnsupportedScheme { tracker: shown }),
    }
}

/// Runs a BEP 15 announce to `host:port`, `keep_going` looked at every
/// quarter second.
fn ask_udp(
    host: &str,
    port: u16,
    shown: String,
    announce: &Announce,
    deadline: Instant,
    keep_going: &dyn Fn() -> bool,
) -> Result<Answer, TrackerError> {
    let resolved = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut addrs| addrs.next().ok_or_else(|| "no address".to_owned()));
    let addr = resolved.map_err(|why| TrackerError::Network {
        tracker: shown.clone(),
        error: crate::Error::new(
            crate::ErrorKind::Network,
            format!("cannot resolve its name: {why}"),
        ),
    })?;
    let tracker = UdpTracker::new(announce.clone(), Instant::now());
    match run_while(addr, tracker, deadline, keep_going) {
        Ok(answer) => Ok(answer.into()),
        Err(UdpError::Tracker(reason)) => Err(TrackerError::Failure {
            tracker: shown,
            reason,
        }),
        Err(UdpError::Malformed(why)) => Err(TrackerError::Malformed {
            tracker: shown,
            why: BadAnswer::Udp(why),
        }),
        Err(UdpError::Deadline) if !keep_going() => Err(TrackerError::Cancelled { tracker: shown }),
        Err(UdpError::Deadline | UdpError::TimedOut) => {
            Err(TrackerError::TimedOut { tracker: shown })
        }
        Err(e @ UdpError::Io(_)) => Err(TrackerError::Network {
            tracker: shown,
            error: crate::Error::new(crate::ErrorKind::Network, e.to_string()),
        }),
    }
}

/// The host (brackets of an IPv6 literal removed) and port of
/// `udp://host:port[/path]`. The path (BEP 41's URL data) is not sent.
fn udp_host_port(url: &str) -> Result<(String, u16), &'static str> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user info in a UDP tracker URL");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("unclosed '[' in the host")?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("no host");
    }
    let port = port.ok_or("no port (UDP trackers have no default)")?;
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port is not a number from 1 to 65535"),
        Ok(port) => Ok((host.to_owned(), port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::tracker::announce::Event;
    use std::time::Duration;

    fn sample() -> Announce {
        Announce {
            info_hash: [7; 20],
            peer_id: *b"-PF0001-abcdefghijkl",
            port: 6881,
            uploaded: 0,
            downloaded: 0,
            left: 10,
            event: Event::Started,
            numwant: None,
            key: 1,
        }
    }

    #[test]
    fn udp_urls_give_host_and_port_and_ignore_the_path() {
        for (url, host, port) in [
            ("udp://t.example:1337", "t.example", 1337),
            ("udp://t.example:6969/announce?x=1", "t.example", 6969),
            ("UDP://[2001:db8::1]:80/a", "2001:db8::1", 80),
            ("udp://127.0.0.1:1#f", "127.0.0.1", 1),
        ] {
            assert_eq!(udp_host_port(url), Ok((host.to_owned(), port)), "{url}");
        }
        for url in [
            "udp://t.example",
            "udp://t.example:",
            "udp://t.example:0",
            "udp://t.example:65536",
            "udp://:80",
            "udp://[::1:80",
            "udp://[::1]",
            "udp://u@t.example:80",
        ] {
            assert!(udp_host_port(url).is_err(), "{url}");
        }
    }

    #[test]
    fn unknown_schemes_and_bad_udp_urls_fail_before_any_io() {
        let ctx = Context::for_tests(None);
        let deadline = Instant::now() + Duration::from_secs(5);
        for url in [
            "wss://t.example/announce",
            "t.example:80",
            "ftp://t.example/",
        ] {
            let err = announce(&ctx, url, &sample(), deadline).unwrap_err();
            assert!(
                matches!(err, TrackerError::UnsupportedScheme { .. }),
                "{url}: {err}"
            );
        }
        let err = announce(&ctx, "udp://t.example/announce", &sample(), deadline).unwrap_err();
        assert!(matches!(err, TrackerError::BadUrl { .. }), "{err}");
        assert!(err.to_string().contains("udp://t.example"), "{err}");
        let err = announce(&ctx, "http://", &sample(), deadline).unwrap_err();
        assert!(matches!(err, TrackerError::BadUrl { .. }), "{err}");
    }

    /// A UDP tracker on `socket` that answers with `peers`, and the
    /// datagrams it receives (it stops when they are dropped).
    fn udp_tracker(
        socket: std::net::UdpSocket,
        peers: Vec<u8>,
    ) -> (std::net::SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
        use crate::torrent::tracker::udp::tests::{announce_answer, connect_answer, server_on};
        server_on(socket, move |_, d| {
            let transaction = u32::from_be_bytes([d[12], d[13], d[14], d[15]]);
            if d.len() == 16 {
                vec![connect_answer(transaction, 9)]
            } else {
                vec![announce_answer(transaction, 900, &peers)]
            }
        })
    }

    #[test]
    fn a_udp_url_is_announced_to_over_udp() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let (addr, _received) = udp_tracker(socket, b"\x0a\x00\x00\x01\x1a\xe1".to_vec());
        let ctx = Context::for_tests(None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let url = format!("udp://{addr}/announce");
        let answer = announce(&ctx, &url, &sample(), deadline).unwrap();
        assert_eq!(answer.peers[0].addr, "10.0.0.1:6881".parse().unwrap());
        assert_eq!(answer.interval, Duration::from_secs(900));
        assert_eq!((answer.seeders, answer.leechers), (Some(9), Some(4)));
        assert_eq!((answer.min_interval, answer.warning), (None, None));
    }

    #[test]
    fn a_udp_tracker_on_ipv6_answers_ipv6_peers() {
        use crate::torrent::tracker::udp::tests::{ipv6_loopback_or_skip, v6_records};
        let test = "a_udp_tracker_on_ipv6_answers_ipv6_peers";
        let Some(socket) = ipv6_loopback_or_skip(test) else {
            return;
        };
        let (addr, _received) = udp_tracker(socket, v6_records(2));
        let ctx = Context::for_tests(None);
        let deadline = Instant::now() + Duration::from_secs(5);
        let url = format!("udp://[::1]:{}/announce", addr.port());
        let answer = announce(&ctx, &url, &sample(), deadline).unwrap();
        let peers: Vec<String> = answer.peers.iter().map(|p| p.addr.to_string()).collect();
        assert_eq!(peers, ["[2001:db8::1]:6881", "[2001:db8::2]:6881"]);
    }

    #[test]
    fn a_cancelled_client_gives_the_announce_up() {
        let ctx = Context::for_tests(None);
        ctx.cancel_handle().cancel();
        let deadline = Instant::now() + Duration::from_secs(5);
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let url = format!("udp://{}", silent.local_addr().unwrap());
        let started = Instant::now();
        let err = announce(&ctx, &url, &sample(), deadline).unwrap_err();
        assert!(err.is_cancelled(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
