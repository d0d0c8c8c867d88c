//! The UDP tracker machine with a made-up clock, and the driver against
//! scripted servers on 127.0.0.1 and, where the machine has IPv6, on
//! [::1].

use super::*;
use crate::torrent::tracker::announce::Event;
use crate::torrent::tracker::http_response::MAX_PEERS;
use std::io::Write;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::sync::mpsc;
use std::thread;

fn announce() -> Announce {
    Announce {
        info_hash: [0xaa; 20],
        peer_id: *b"-PF0001-abcdefghijkl",
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Event::Started,
        numwant: None,
        key: 0x1234_5678,
    }
}

/// Transaction ids 100, 101, 102, …
fn counting() -> TransactionIds {
    let mut next = 100;
    Box::new(move || {
        next += 1;
        next - 1
    })
}

fn machine(now: Instant) -> UdpTracker {
    UdpTracker::new(announce(), now).with_transaction_ids(counting())
}

pub(crate) fn connect_answer(transaction: u32, id: u64) -> Vec<u8> {
    let mut out = 0u32.to_be_bytes().to_vec();
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out
}

pub(crate) fn announce_answer(transaction: u32, interval: u32, peers: &[u8]) -> Vec<u8> {
    let mut out = 1u32.to_be_bytes().to_vec();
    for n in [transaction, interval, 4, 9] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(peers);
    out
}

fn error_answer(transaction: u32, text: &[u8]) -> Vec<u8> {
    let mut out = 3u32.to_be_bytes().to_vec();
    out.extend_from_slice(&transaction.to_be_bytes());
    out.extend_from_slice(text);
    out
}

fn transaction_of(datagram: &[u8]) -> u32 {
    be32(&datagram[12..16])
}

#[test]
fn connect_then_announce_gives_the_peers() {
    let t0 = Instant::now();
    let mut m = machine(t0);
    assert_eq!(m.poll_at(), Some(t0));
    let connect = m.poll(t0).unwrap().unwrap();
    assert_eq!(connect.len(), 16);
    assert_eq!(be64(&connect[..8]), 0x41727101980);
    assert_eq!(be32(&connect[8..12]), 0);
    assert_eq!(be32(&connect[12..16]), 100);
    assert_eq!(m.poll(t0).unwrap(), None, "one request in flight");

    assert_eq!(m.handle(&connect_answer(100, 0xc0ffee), t0).unwrap(), None);
    let request = m.poll(t0).unwrap().unwrap();
    assert_eq!(request.len(), 98);
    assert_eq!(be64(&request[..8]), 0xc0ffee);
    assert_eq!(be32(&request[8..12]), 1);
    assert_eq!(transaction_of(&request), 101);
    assert_eq!(&request[16..36], &[0xaa; 20]);
    assert_eq!(&request[36..56], b"-PF0001-abcdefghijkl");
    assert_eq!(be64(&request[56..64]), 2, "downloaded");
    assert_eq!(be64(&request[64..72]), 3, "left");
    assert_eq!(be64(&request[72..80]), 1, "uploaded");
    assert_eq!(be32(&request[80..84]), 2, "started");
    assert_eq!(be32(&request[88..92]), 0x1234_5678, "key");
    assert_eq!(&request[92..96], &(-1i32).to_be_bytes(), "numwant");
    assert_eq!(&request[96..98], &6881u16.to_be_bytes());

    let peers = b"\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x00";
    let answer = m
        .handle(&announce_answer(101, 1800, peers), t0)
        .unwrap()
        .unwrap();
    assert_eq!(answer.interval, Duration::from_secs(1800));
    assert_eq!((answer.leechers, answer.seeders), (4, 9));
    let only = Peer {
        addr: "10.0.0.1:6881".parse().unwrap(),
        id: None,
    };
    assert_eq!(answer.peers, [only], "duplicates and port 0 dropped");
    assert_eq!(m.poll(t0).unwrap(), None);
    assert_eq!(m.poll_at(), None);
}

#[test]
fn retransmissions_wait_15_30_60_seconds_and_so_on_then_give_up() {
    let t0 = Instant::now();
    let mut m = machine(t0);
    let first = m.poll(t0).unwrap().unwrap();
    let mut at = t0;
    for n in 0..=MAX_RETRANSMISSIONS {
        let wait = Duration::from_secs(15 << n);
        assert_eq!(m.poll_at(), Some(at + wait), "after send {n}");
        assert_eq!(m.poll(at + wait - Duration::from_millis(1)).unwrap(), None);
        at += wait;
        if n < MAX_RETRANSMISSIONS {
            let again = m.poll(at).unwrap().unwrap();
            assert_eq!(again, first, "same request, same transaction id");
        }
    }
    assert_eq!(at - t0, Duration::from_secs(15 * 511));
    assert_eq!(m.poll(at), Err(UdpError::TimedOut));
    assert_eq!(m.poll(at), Err(UdpError::TimedOut));
    assert_eq!(m.poll_at(), None);
}

#[test]
fn a_late_answer_to_the_first_send_still_counts() {
    let t0 = Instant::now();
    let mut m = machine(t0);
    m.poll(t0).unwrap().unwrap();
    let t1 = t0 + Duration::from_secs(15);
    m.poll(t1).unwrap().unwrap();
    assert_eq!(m.handle(&connect_answer(100, 7), t1).unwrap(), None);
    let request = m.poll(t1).unwrap().unwrap();
    assert_eq!(be64(&request[..8]), 7);
    // The timeouts so far still count: the announce waits 30 s, not 15.
    assert_eq!(m.poll_at(), Some(t1 + Duration::from_secs(30)));
}

#[test]
fn an_expired_connection_id_is_renewed_before_announcing() {
    let t0 = Instant::now();
    let mut m = machine(t0);
    m.poll(t0).unwrap().unwrap();
    m.handle(&connect_answer(100, 7), t0).unwrap();
    let announce = m.poll(t0).unwrap().unwrap();
    assert_eq!(be32(&announce[8..12]), 1);
    // Unanswered: resent at 15 s (id 45 s old), then at 45 s (the id is
    // still under a minute old), then at 105 s the id has expired.
    let resent = m.poll(t0 + Duration::from_secs(15)).unwrap().unwrap();
    assert_eq!(resent, announce);
    let resent = m.poll(t0 + Duration::from_secs(45)).unwrap().unwrap();
    assert_eq!(resent, announce);
    let t3 = t0 + Duration::from_secs(105);
    let connect = m.poll(t3).unwrap().unwrap();
    assert_eq!(connect.len(), 16);
    assert_eq!(be64(&connect[..8]), PROTOCOL_ID);
    assert_eq!(
        transaction_of(&connect),
        102,
        "a new transaction for a new request"
    );
    // The old announce's answer is now ignored.
    assert_eq!(m.handle(&announce_answer(101, 60, b""), t3).unwrap(), None);
    m.handle(&connect_answer(102, 8), t3).unwrap();
    let announce = m.poll(t3).unwrap().unwrap();
    assert_eq!(be64(&announce[..8]), 8);
    assert_eq!(transaction_of(&announce), 103);
}

#[test]
fn a_connection_id_exactly_60_seconds_old_is_not_used() {
    let t0 = Instant::now();
    let mut m = machine(t0).with_base_timeout(Duration::from_secs(60));
    m.poll(t0).unwrap().unwrap();
    m.handle(&connect_answer(100, 7), t0).unwrap();
    m.poll(t0).unwrap().unwrap();
    let again = m.poll(t0 + CONNECTION_LIFETIME).unwrap().unwrap();
    assert_eq!(again.len(), 16, "a connect, not an announce");
}

#[test]
fn answers_with_another_transaction_id_are_ignored() {
    let t0 = Instant::now();
    let mut m = machine(t0);
    assert_eq!(
        m.handle(&connect_answer(100, 1), t0).unwrap(),
        None,
        "nothing in flight"
    );
    m.poll(t0).unwrap().unwrap();
    for forged in [
        connect_answer(99, 1),
        error_answer(7, b"go away"),
        b"\x00\x00\x00".to_vec(),
        Vec::new(),
    ] {
        assert_eq!(m.handle(&forged, t0).unwrap(), None);
    }
    m.handle(&connect_answer(100, 5), t0).unwrap();
    let request = m.poll(t0).unwrap().unwrap();
    assert_eq!(be64(&request[..8]), 5);
}

#[test]
fn an_error_action_ends_with_the_message() {
    let t0 = Instant::now();
    let mut m = machine(t0);
    m.poll(t0).unwrap().unwrap();
    let err = m.handle(&error_answer(100, b"torrent \x1b[2Jnot registered"), t0);
    let expected = UdpError::Tracker("torrent \x1b[2Jnot registered".into());
    assert_eq!(err, Err(expected.clone()));
    assert!(expected.to_string().contains("\\u{1b}"));
    assert_eq!(m.poll(t0 + Duration::from_secs(100)), Err(expected));
    assert_eq!(m.poll_at(), None);
}

#[test]
fn malformed_answers_with_our_transaction_id_fail() {
    let t0 = Instant::now();
    for (answer, why) in [
        (
            connect_answer(100, 1)[..12].to_vec(),
            "short connect answer",
        ),
        (announce_answer(100, 60, b""), "action other than asked"),
    ] {
        let mut m = machine(t0);
        m.poll(t0).unwrap();
        assert_eq!(m.handle(&answer, t0), Err(UdpError::Malformed(why)));
    }
    for (answer, why) in [
        (
            announce_answer(101, 60, b"\x01\x02\x03\x04\x05"),
            "peers not whole 6-byte records",
        ),
        (
            announce_answer(101, 60, b"")[..19].to_vec(),
            "short announce answer",
        ),
    ] {
        let mut m = machine(t0);
        m.poll(t0).unwrap();
        m.handle(&connect_answer(100, 1), t0).unwrap();
        m.poll(t0).unwrap();
        assert_eq!(m.handle(&answer, t0), Err(UdpError::Malformed(why)));
    }
}

#[test]
fn announce_answers_are_bounded() {
    let mut peers = Vec::new();
    for i in 1..=1000u32 {
        peers.extend_from_slice(&i.to_be_bytes());
        peers.extend_from_slice(&[0, 80]);
    }
    let answer = parse_announce_answer(&announce_answer(1, u32::MAX, &peers), Family::V4).unwrap();
    assert_eq!(answer.peers.len(), MAX_PEERS);
    assert_eq!(answer.interval, crate::torrent::tracker::MAX_INTERVAL);
    let answer = parse_announce_answer(&announce_answer(1, 0, b""), Family::V4).unwrap();
    assert_eq!(answer.interval, crate::torrent::tracker::MIN_INTERVAL);
}

/// `n` 18-byte IPv6 records: 2001:db8::1, 2001:db8::2, … on port 6881.
pub(crate) fn v6_records(n: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 1..=n {
        out.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i).octets());
        out.extend_from_slice(&6881u16.to_be_bytes());
    }
    out
}

fn v6_peer(i: u16, port: u16) -> Peer {
    Peer {
        addr: SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i), port)),
        id: None,
    }
}

#[test]
fn an_announce_over_ipv6_reads_18_byte_peers() {
    let t0 = Instant::now();
    let mut m = machine(t0).with_peer_family(Family::V6);
    m.poll(t0).unwrap().unwrap();
    m.handle(&connect_answer(100, 7), t0).unwrap();
    m.poll(t0).unwrap().unwrap();
    let mut peers = v6_records(2);
    peers.extend_from_slice(&v6_records(1));
    let answer = m
        .handle(&announce_answer(101, 900, &peers), t0)
        .unwrap()
        .unwrap();
    assert_eq!(
        answer.peers,
        [v6_peer(1, 6881), v6_peer(2, 6881)],
        "the duplicate dropped"
    );
    assert_eq!((answer.leechers, answer.seeders), (4, 9));
}

#[test]
fn peer_records_follow_the_family_not_the_length() {
    // 36 bytes are six IPv4 peers or two IPv6 ones: only the family tells.
    let records: Vec<u8> = (1..=36).collect();
    let datagram = announce_answer(1, 60, &records);
    let four = parse_announce_answer(&datagram, Family::V4).unwrap();
    let six = parse_announce_answer(&datagram, Family::V6).unwrap();
    assert_eq!(four.peers.len(), 6);
    assert_eq!(four.peers[0].addr, SocketAddr::from(([1, 2, 3, 4], 0x0506)));
    assert_eq!(six.peers.len(), 2);
    let mut first = [0u8; 16];
    first.copy_from_slice(&records[..16]);
    assert_eq!(six.peers[0].addr, SocketAddr::from((first, 0x1112)));
    assert_eq!(six.peers[1].addr.port(), 0x2324);
    // Whole IPv4 records are not whole IPv6 ones.
    let datagram = announce_answer(1, 60, &[1u8; 12]);
    assert_eq!(
        parse_announce_answer(&datagram, Family::V6),
        Err(UdpError::Malformed("peers not whole 18-byte records"))
    );
    let mut huge = Vec::new();
    for i in 1..=1000u16 {
        huge.extend_from_slice(&v6_records(1)[..16]);
        huge.extend_from_slice(&i.to_be_bytes());
    }
    let answer = parse_announce_answer(&announce_answer(1, 60, &huge), Family::V6).unwrap();
    assert_eq!(answer.peers.len(), MAX_PEERS);
}

#[test]
fn the_peer_family_is_that_of_the_address_the_socket_sends_to() {
    let v4: SocketAddr = "192.0.2.1:6969".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::1]:6969".parse().unwrap();
    let mapped: SocketAddr = "[::ffff:192.0.2.1]:6969".parse().unwrap();
    assert_eq!(peer_family(&v4), Family::V4);
    assert_eq!(peer_family(&v6), Family::V6);
    assert_eq!(
        peer_family(&mapped),
        Family::V4,
        "IPv4-mapped goes over IPv4"
    );
}

/// A scripted tracker on 127.0.0.1: `script` gets each datagram received
/// and says what to send back (nothing, or several datagrams). Returns the
/// address and a channel of the datagrams received.
fn server(
    script: impl FnMut(usize, &[u8]) -> Vec<Vec<u8>> + Send + 'static,
) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    server_on(UdpSocket::bind("127.0.0.1:0").unwrap(), script)
}

/// A scripted tracker on `socket`.
pub(crate) fn server_on(
    socket: UdpSocket,
    mut script: impl FnMut(usize, &[u8]) -> Vec<Vec<u8>> + Send + 'static,
) -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    let addr = socket.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 2048];
        for i in 0.. {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            for reply in script(i, &buf[..n]) {
                socket.send_to(&reply, from).unwrap();
            }
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// Answers a connect with id 42 and an announce with one peer; the reply
/// for the transaction of `datagram`.
fn honest(datagram: &[u8]) -> Vec<u8> {
    let transaction = be32(&datagram[12..16]);
    if datagram.len() == 16 {
        connect_answer(transaction, 42)
    } else {
        assert_eq!(be64(&datagram[..8]), 42);
        announce_answer(transaction, 900, b"\x7f\x00\x00\x01\x1a\xe1")
    }
}

fn run_fast(addr: SocketAddr) -> Result<AnnounceAnswer, UdpError> {
    let tracker =
        UdpTracker::new(announce(), Instant::now()).with_base_timeout(Duration::from_millis(50));
    run(addr, tracker, Instant::now() + Duration::from_secs(10))
}

fn peer() -> Vec<Peer> {
    vec![Peer {
        addr: "127.0.0.1:6881".parse().unwrap(),
        id: None,
    }]
}

#[test]
fn driver_connects_then_announces() {
    let (addr, received) = server(|_, d| vec![honest(d)]);
    let answer = udp_announce(addr, announce(), Instant::now() + Duration::from_secs(10)).unwrap();
    assert_eq!(answer.peers, peer());
    assert_eq!(answer.interval, Duration::from_secs(900));
    assert_eq!(received.recv().unwrap().len(), 16);
    assert_eq!(received.recv().unwrap().len(), 98);
}

#[test]
fn driver_retransmits_a_dropped_connect_after_the_timeout() {
    let (addr, received) = server(|i, d| if i == 0 { vec![] } else { vec![honest(d)] });
    let started = Instant::now();
    let answer = run_fast(addr).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(answer.peers, peer());
    let first = received.recv().unwrap();
    assert_eq!(received.recv().unwrap(), first, "the same connect, resent");
}

#[test]
fn driver_ignores_an_answer_with_another_transaction_id() {
    let (addr, _received) = server(|_, d| {
        let mut forged = honest(d);
        forged[4] ^= 0xff;
        if d.len() == 16 {
            vec![forged, honest(d)]
        } else {
            vec![error_answer(be32(&forged[4..8]), b"forged"), honest(d)]
        }
    });
    assert_eq!(run_fast(addr).unwrap().peers, peer());
}

#[test]
fn driver_reports_an_error_action() {
    let (addr, _received) = server(|_, d| vec![error_answer(be32(&d[12..16]), b"unknown torrent")]);
    assert_eq!(
        run_fast(addr),
        Err(UdpError::Tracker("unknown torrent".into()))
    );
}

#[test]
fn driver_stops_at_the_deadline() {
    let (addr, _received) = server(|_, _| vec![]);
    let tracker =
        UdpTracker::new(announce(), Instant::now()).with_base_timeout(Duration::from_millis(20));
    let result = run(addr, tracker, Instant::now() + Duration::from_millis(150));
    assert_eq!(result, Err(UdpError::Deadline));
}

/// A socket on [::1], or a notice that the test is skipped: some machines
/// (containers without IPv6) have no IPv6 loopback.
pub(crate) fn ipv6_loopback_or_skip(test: &str) -> Option<UdpSocket> {
    match UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0)) {
        Ok(socket) => Some(socket),
        Err(why) => {
            // Straight to the file descriptor: the test harness captures
            // `eprintln!` of passing tests, and this must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "notice: {test} skipped: cannot bind a UDP socket on [::1]: {why}"
            );
            None
        }
    }
}

#[test]
fn driver_over_ipv6_reads_ipv6_peers() {
    let Some(socket) = ipv6_loopback_or_skip("driver_over_ipv6_reads_ipv6_peers") else {
        return;
    };
    let (addr, received) = server_on(socket, |_, d| {
        let transaction = be32(&d[12..16]);
        if d.len() == 16 {
            vec![connect_answer(transaction, 42)]
        } else {
            let mut peers = Ipv6Addr::LOCALHOST.octets().to_vec();
            peers.extend_from_slice(&6881u16.to_be_bytes());
            peers.extend_from_slice(&v6_records(1));
            vec![announce_answer(transaction, 900, &peers)]
        }
    });
    assert!(addr.is_ipv6());
    let answer = run_fast(addr).unwrap();
    let loopback = Peer {
        addr: "[::1]:6881".parse().unwrap(),
        id: None,
    };
    assert_eq!(answer.peers, [loopback, v6_peer(1, 6881)]);
    assert_eq!(answer.interval, Duration::from_secs(900));
    assert_eq!(received.recv().unwrap().len(), 16);
    assert_eq!(received.recv().unwrap().len(), 98);
}

#[test]
fn driver_stops_soon_when_told_to_stop() {
    let (addr, _received) = server(|_, _| vec![]);
    let stop_at = Instant::now() + Duration::from_millis(100);
    let started = Instant::now();
    let result = run_while(
        addr,
        UdpTracker::new(announce(), Instant::now()),
        Instant::now() + Duration::from_secs(30),
        &|| Instant::now() < stop_at,
    );
    assert_eq!(result, Err(UdpError::Deadline));
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(100) + WATCH_INTERVAL * 2,
        "{took:?}: not the 15 s timer"
    );
}
