//! The announcer thread against scripted trackers, with waits of
//! milliseconds instead of minutes, and once against an HTTP tracker on
//! 127.0.0.1.

use super::*;
use crate::torrent::tracker::http::tests::{param, params, response, tracker};
use std::sync::mpsc;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// Waits of milliseconds: 150 ms without a min interval, retries after
/// 40, 80, then 160 ms at most, 500 ms for `stopped`.
fn fast() -> Timing {
    Timing {
        default_min_interval: MS * 150,
        first_retry: MS * 40,
        max_retry: MS * 160,
        tracker_timeout: Duration::from_secs(5),
        stop_timeout: MS * 500,
    }
}

fn template() -> Announce {
    Announce {
        info_hash: [3; 20],
        peer_id: *b"-PF0001-abcdefghijkl",
        port: 6881,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: AnnounceEvent::None,
        numwant: Some(50),
        key: 9,
    }
}

/// One announce a script received.
#[derive(Clone, Debug)]
struct Call {
    url: String,
    tracker_id: Option<Vec<u8>>,
    announce: Announce,
    at: Instant,
    deadline: Instant,
}

type Calls = Arc<Mutex<Vec<Call>>>;

/// A scripted tracker: `answer` gives what each announce gets, and every
/// call is recorded.
fn script(
    mut answer: impl FnMut(&Call, &KeepGoing) -> std::result::Result<Answer, TrackerError>
        + Send
        + 'static,
) -> (Ask, Calls) {
    let calls: Calls = Arc::default();
    let recorded = Arc::clone(&calls);
    let ask: Ask = Box::new(move |url, id, announce, deadline, keep_going| {
        let call = Call {
            url: url.to_owned(),
            tracker_id: id.map(<[u8]>::to_vec),
            announce: announce.clone(),
            at: Instant::now(),
            deadline,
        };
        recorded.lock().unwrap().push(call.clone());
        answer(&call, keep_going)
    });
    (ask, calls)
}

fn answer(interval: Duration, min_interval: Option<Duration>) -> Answer {
    Answer {
        interval,
        min_interval,
        peers: vec![Peer {
            addr: "10.0.0.1:6881".parse().unwrap(),
            id: None,
        }],
        ..Answer::default()
    }
}

fn timed_out(call: &Call) -> TrackerError {
    TrackerError::TimedOut {
        tracker: tracker_name(&call.url),
    }
}

/// The calls once there are `n`, waiting up to 5 s.
fn calls_when(calls: &Calls, n: usize) -> Vec<Call> {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let now = calls.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(
            Instant::now() < until,
            "{} calls of {n}: {now:?}",
            now.len()
        );
        std::thread::sleep(MS * 2);
    }
}

/// A context whose events are kept.
fn context() -> (Context, Arc<Mutex<Vec<Event>>>) {
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let sink = Arc::clone(&events);
    let ctx = Context::for_tests(Some(Arc::new(move |e: &Event| {
        sink.lock().unwrap().push(e.clone())
    })));
    (ctx, events)
}

/// Tiers in the order given.
fn tiers(list: &[&[&str]]) -> Tiers {
    let list: Vec<Vec<String>> = list
        .iter()
        .map(|tier| tier.iter().map(|u| u.to_string()).collect())
        .collect();
    // One tracker per tier: the shuffle cannot change the order.
    assert!(list.iter().all(|tier| tier.len() == 1));
    Tiers::new(None, &list)
}

fn start(
    ctx: Context,
    tiers: Tiers,
    stats: Arc<AnnounceStats>,
    ask: Ask,
) -> (Announcer, mpsc::Receiver<Vec<Peer>>) {
    let (tx, rx) = mpsc::channel();
    let on_peers = move |peers| {
        let _ = tx.send(peers);
    };
    let announcer =
        Announcer::start_with(ctx, tiers, template(), stats, on_peers, fast(), ask).unwrap();
    (announcer, rx)
}

fn events_of(call: &[Call]) -> Vec<AnnounceEvent> {
    call.iter().map(|c| c.announce.event).collect()
}

#[test]
fn started_goes_at_once_then_none_after_the_interval_with_the_counts_of_the_time() {
    let (ask, calls) = script(|_, _| Ok(answer(MS * 200, None)));
    let stats = Arc::new(AnnounceStats::new(1000));
    let began = Instant::now();
    let (announcer, peers) = start(
        context().0,
        tiers(&[&["http://a.example/"]]),
        Arc::clone(&stats),
        ask,
    );
    let first = calls_when(&calls, 1)[0].clone();
    // At once: nothing to wait for (a loaded machine may be slow to run
    // the thread, hence the margin).
    assert!(first.at - began < MS * 500, "{:?}", first.at - began);
    assert_eq!(first.announce.event, AnnounceEvent::Started);
    assert_eq!(first.announce.left, 1000);
    assert_eq!(first.announce.numwant, Some(50));
    assert_eq!(first.announce.info_hash, [3; 20]);
    assert!(first.deadline - first.at <= fast().tracker_timeout);
    stats.add_downloaded(600);
    stats.add_uploaded(7);
    stats.set_left(400);
    assert_eq!(peers.recv().unwrap().len(), 1, "the peers handed on");

    let second = calls_when(&calls, 2)[1].clone();
    assert_eq!(second.announce.event, AnnounceEvent::None);
    assert!(
        second.at - first.at >= MS * 200,
        "{:?}",
        second.at - first.at
    );
    let counts = (
        second.announce.uploaded,
        second.announce.downloaded,
        second.announce.left,
    );
    assert_eq!(counts, (7, 600, 400));
    announcer.stop();
}

#[test]
fn stop_tells_the_tracker_that_answered_stopped_and_joins_fast() {
    let (ask, calls) = script(|call, _| match call.url.as_str() {
        "http://b.example/" => Ok(Answer {
            tracker_id: Some(b"id-b".to_vec()),
            ..answer(Duration::from_secs(3600), None)
        }),
        _ => Err(timed_out(call)),
    });
    let stats = Arc::new(AnnounceStats::new(5));
    let (announcer, _peers) = start(
        context().0,
        tiers(&[&["http://a.example/"], &["http://b.example/"]]),
        stats,
        ask,
    );
    assert_eq!(calls_when(&calls, 2).len(), 2);
    let asked = Instant::now();
    announcer.stop();
    assert!(asked.elapsed() < MS * 300, "{:?}", asked.elapsed());
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        events_of(&calls),
        [
            AnnounceEvent::Started,
            AnnounceEvent::Started,
            AnnounceEvent::Stopped
        ]
    );
    let stopped = &calls[2];
    assert_eq!(
        stopped.url, "http://b.example/",
        "only the one that answered"
    );
    assert_eq!(stopped.tracker_id.as_deref(), Some(&b"id-b"[..]));
    assert_eq!(stopped.announce.numwant, Some(0));
    assert!(stopped.deadline <= asked + fast().stop_timeout + MS * 50);
}

#[test]
fn stop_gives_up_an_announce_in_flight_and_tells_nobody_never_answered() {
    let (ask, calls) = script(|call, keep_going| {
        let until = Instant::now() + Duration::from_secs(10);
        while keep_going() && Instant::now() < until {
            std::thread::sleep(MS * 5);
        }
        Err(TrackerError::Cancelled {
            tracker: tracker_name(&call.url),
        })
    });
    let (ctx, events) = context();
    let (announcer, _peers) = start(
        ctx,
        tiers(&[&["udp://a.example:1"], &["udp://b.example:1"]]),
        Arc::default(),
        ask,
    );
    calls_when(&calls, 1);
    let asked = Instant::now();
    announcer.stop();
    assert!(asked.elapsed() < MS * 300, "{:?}", asked.elapsed());
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "the round ended, no stopped: {calls:?}");
    assert!(events.lock().unwrap().is_empty(), "a give-up is no failure");
}

#[test]
fn a_started_answered_while_stopping_is_followed_by_stopped_but_not_handed_on() {
    let (ask, calls) = script(|call, keep_going| {
        if call.announce.event == AnnounceEvent::Started {
            while keep_going() {
                std::thread::sleep(MS * 5);
            }
        }
        Ok(answer(Duration::from_secs(60), None))
    });
    let (announcer, peers) = start(
        context().0,
        tiers(&[&["http://a.example/"]]),
        Arc::default(),
        ask,
    );
    calls_when(&calls, 1);
    announcer.stop();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        events_of(&calls),
        [AnnounceEvent::Started, AnnounceEvent::Stopped]
    );
    assert!(peers.try_recv().is_err(), "nothing handed on after stop");
}

#[test]
fn more_peers_are_asked_for_no_sooner_than_the_min_interval() {
    let mut answers = vec![
        answer(Duration::from_secs(60), Some(MS * 300)),
        answer(Duration::from_secs(60), None),
        answer(Duration::from_secs(60), None),
    ]
    .into_iter();
    let (ask, calls) = script(move |_, _| Ok(answers.next().unwrap_or_default()));
    let (announcer, peers) = start(
        context().0,
        tiers(&[&["http://a.example/"]]),
        Arc::default(),
        ask,
    );
    peers.recv().unwrap();
    announcer.request_more();
    announcer.request_more();
    let second = calls_when(&calls, 2);
    let gap = second[1].at - second[0].at;
    assert!(gap >= MS * 300 && gap < Duration::from_secs(5), "{gap:?}");
    assert_eq!(second[1].announce.event, AnnounceEvent::None);
    peers.recv().unwrap();
    // No min interval in that answer: the default floor.
    announcer.request_more();
    let third = calls_when(&calls, 3);
    let gap = third[2].at - third[1].at;
    assert!(gap >= fast().default_min_interval, "{gap:?}");
    assert!(gap < Duration::from_secs(5), "{gap:?}");
    std::thread::sleep(MS * 400);
    assert_eq!(calls.lock().unwrap().len(), 3, "one announce per request");
    announcer.stop();
}

#[test]
fn completed_is_told_at_once_and_once() {
    let (ask, calls) = script(|_, _| {
        Ok(answer(
            Duration::from_secs(60),
            Some(Duration::from_secs(2)),
        ))
    });
    let (announcer, peers) = start(
        context().0,
        tiers(&[&["http://a.example/"]]),
        Arc::default(),
        ask,
    );
    peers.recv().unwrap();
    let finished = Instant::now();
    announcer.completed();
    announcer.completed();
    let calls_now = calls_when(&calls, 2);
    assert!(
        calls_now[1].at - finished < MS * 100,
        "not held by min interval"
    );
    peers.recv().unwrap();
    announcer.completed();
    announcer.request_more();
    calls_when(&calls, 3);
    announcer.stop();
    let calls = calls.lock().unwrap().clone();
    assert_eq!(
        events_of(&calls),
        [
            AnnounceEvent::Started,
            AnnounceEvent::Completed,
            AnnounceEvent::None,
            AnnounceEvent::Stopped
        ]
    );
}

#[test]
fn rounds_no_tracker_answers_are_told_and_retried_with_backoff() {
    let (ask, calls) = script(|call, _| Err(timed_out(call)));
    let (ctx, events) = context();
    let (announcer, _peers) = start(
        ctx,
        tiers(&[
            &["http://a.example/x?passkey=s3cret"],
            &["udp://b.example:1"],
        ]),
        Arc::default(),
        ask,
    );
    let calls = calls_when(&calls, 8);
    announcer.stop();
    assert!(events_of(&calls)
        .iter()
        .all(|e| *e == AnnounceEvent::Started));
    let rounds: Vec<Instant> = calls.iter().step_by(2).map(|c| c.at).collect();
    for (i, wait) in [40, 80, 160].into_iter().enumerate() {
        let gap = rounds[i + 1] - rounds[i];
        assert!(gap >= MS * wait, "round {i}: {gap:?}");
    }
    let events = events.lock().unwrap().clone();
    let waits: Vec<Duration> = events
        .iter()
        .filter_map(|e| match e {
            Event::NoTrackerAnswered { trackers: 2, wait } => Some(*wait),
            _ => None,
        })
        .collect();
    assert_eq!(&waits[..3], [MS * 40, MS * 80, MS * 160]);
    let failed: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::TrackerFailed { tracker, error } => {
                assert!(error.contains(tracker.as_str()) && !error.contains("s3cret"));
                Some(tracker.as_str())
            }
            _ => None,
        })
        .take(2)
        .collect();
    assert_eq!(failed, ["http://a.example", "udp://b.example:1"]);
}

#[test]
fn a_trackers_warning_is_told_and_its_peers_kept() {
    let (ask, _calls) = script(|_, _| {
        Ok(Answer {
            warning: Some("ratio low".into()),
            ..answer(Duration::from_secs(60), None)
        })
    });
    let (ctx, events) = context();
    let (announcer, peers) = start(
        ctx,
        tiers(&[&["https://a.example/announce"]]),
        Arc::default(),
        ask,
    );
    assert_eq!(peers.recv().unwrap().len(), 1);
    announcer.stop();
    let events = events.lock().unwrap().clone();
    assert!(
        matches!(
            &events[..],
            [Event::TrackerWarning { tracker, message }]
                if tracker == "https://a.example" && message == "ratio low"
        ),
        "{events:?}"
    );
}

#[test]
fn the_handle_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Announcer>();
    shared::<AnnounceStats>();
}

#[test]
fn with_no_trackers_nothing_is_asked_and_stop_is_prompt() {
    let (ask, calls) = script(|call, _| Err(timed_out(call)));
    let (ctx, events) = context();
    let (announcer, _peers) = start(ctx, Tiers::default(), Arc::default(), ask);
    announcer.request_more();
    announcer.completed();
    std::thread::sleep(MS * 50);
    let asked = Instant::now();
    drop(announcer);
    assert!(asked.elapsed() < MS * 100);
    assert!(calls.lock().unwrap().is_empty());
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn an_http_tracker_hears_started_then_stopped() {
    let body = b"d8:intervali1800e5:peers6:\x0a\x00\x00\x01\x1a\xe1e".to_vec();
    let (addr, targets) = tracker(move |_| response("200 OK", &body));
    let url = format!("http://{addr}/announce");
    let (tx, peers) = mpsc::channel();
    let announcer = Announcer::start(
        Context::for_tests(None),
        Tiers::new(Some(&url), &[]),
        template(),
        Arc::new(AnnounceStats::new(42)),
        move |p| {
            let _ = tx.send(p);
        },
    )
    .unwrap();
    let got = peers.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got[0].addr, "10.0.0.1:6881".parse().unwrap());
    let started = params(&targets.recv().unwrap());
    assert_eq!(param(&started, "event"), Some("started"));
    assert_eq!(param(&started, "left"), Some("42"));
    let asked = Instant::now();
    announcer.stop();
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    let stopped = params(&targets.recv_timeout(Duration::from_secs(1)).unwrap());
    assert_eq!(param(&stopped, "event"), Some("stopped"));
    assert_eq!(param(&stopped, "numwant"), Some("0"));
}
