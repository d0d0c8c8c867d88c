//! Memory of an endless manifest, measured in a process of its own: the
//! other tests' allocations would blur the process's RSS.

mod support;

use std::sync::Arc;

use partfetch::{ByteSource, Client};
use support::{test_data, Reply, Request, Server};

fn client() -> Client {
    Client::builder().no_env_proxy().build().unwrap()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_endless_tail_recursive_manifest_streams_in_flat_memory() {
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
