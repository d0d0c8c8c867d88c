//! Memory of an endless manifest, measured in a process of its own: the
//! other tests' allocations would blur the process's RSS.

mod support;

use std::sync::{Arc, Mutex};

use partfetch::manifest::MAX_RECORDED_PARTS;
use partfetch::{ByteSource, Client, Stream};
use support::{test_data, Reply, Request, Server};

fn client() -> Client {
    Client::builder().no_env_proxy().build().unwrap()
}

/// Held while a test measures, so that no other test's allocations
/// blur its RSS.
static MEASURING: Mutex<()> = Mutex::new(());

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_endless_tail_recursive_manifest_streams_in_flat_memory() {
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let block = Arc::new(test_data(1 << 20, 7));
    let served = block.clone();
    let server = Server::start(move |req: &Request| match req.path() {
        "/loop.parts" => Reply::ok(b"block\n--\nloop.parts\n".to_vec()),
        "/block" => Reply::ok(served.as_slice().to_vec()),
        _ => Reply::status(404),
    });
    let mut stream = client().open(&server.url("/loop.parts")).unwrap();
    let mut total = 0u64;
    let mut rss_after_warmup = 0;
    while total < 120 << 20 {
        let chunk = stream.next_chunk().unwrap().expect("endless");
        let start = (total % (1 << 20)) as usize;
        assert_eq!(chunk, &block[start..start + chunk.len()]);
        total += chunk.len() as u64;
        if rss_after_warmup == 0 && total >= 20 << 20 {
            rss_after_warmup = rss_kib();
        }
    }
    let growth = rss_kib().saturating_sub(rss_after_warmup);
    assert!(growth < 8 * 1024, "RSS grew by {growth} KiB over 100 MiB");
}

/// One manifest's worth of tiny parts: a thousand one-byte parts marked
/// `(*)` (so that after the first they come from the cache and cost no
/// request), then the manifest itself again, endlessly.
fn tiny_parts_server() -> Server {
    let mut manifest = b"(*)\nbyte\n--\n".repeat(1000);
    manifest.extend_from_slice(b"tiny.parts\n");
    Server::start(move |req: &Request| match req.path() {
        "/tiny.parts" => Reply::ok(manifest.clone()),
        "/byte" => Reply::ok(b"b".to_vec()),
        _ => Reply::status(404),
    })
}

/// RSS growth, in KiB, over 280 000 parts of an endless manifest of
/// tiny parts, after 20 000 to warm up.
fn growth_over_tiny_parts(stream: &mut Stream) -> u64 {
    let mut parts = 0u64;
    let mut rss_after_warmup = 0;
    while parts < 300_000 {
        let chunk = stream.next_chunk().unwrap().expect("endless");
        assert_eq!(chunk, b"b");
        parts += 1;
        if parts == 20_000 {
            rss_after_warmup = rss_kib();
        }
    }
    rss_kib().saturating_sub(rss_after_warmup)
}

#[test]
fn an_endless_manifest_of_tiny_parts_read_once_keeps_no_record_of_them() {
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let server = tiny_parts_server();
    let mut stream = client().open(&server.url("/tiny.parts")).unwrap();
    let growth = growth_over_tiny_parts(&mut stream);
    assert!(
        growth < 8 * 1024,
        "RSS grew by {growth} KiB over 280 000 parts"
    );
    assert!(stream.completed_parts().is_none());
    assert!(!stream.is_resumable());
}

#[test]
fn an_endless_manifest_of_tiny_parts_recorded_for_resuming_stops_recording_at_the_bound() {
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let server = tiny_parts_server();
    let mut stream = client().open(&server.url("/tiny.parts")).unwrap();
    stream.record_parts();
    let growth = growth_over_tiny_parts(&mut stream);
    assert!(
        growth < 8 * 1024,
        "RSS grew by {growth} KiB over 280 000 parts"
    );
    let recorded = stream.completed_parts().map(<[_]>::len);
    assert_eq!(
        recorded,
        Some(MAX_RECORDED_PARTS),
        "past the bound, the first parts only"
    );
}
