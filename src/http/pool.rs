//! Idle keep-alive connections, kept for the next request to their origin.
//!
//! Owns which connections are idle and for how long. A connection is put
//! back only by a body that was read to its end with a reusable framing, and
//! is handed out again only if the peer has not closed it meanwhile.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http::conn::Connection;
use crate::url::{Origin, Url};

/// How long an idle connection is kept. Servers commonly close idle
/// connections after 5 to 75 s; a connection older than this is more likely
/// closed than useful.
pub const IDLE_KEEP: Duration = Duration::from_secs(30);

/// The most idle connections kept per origin: enough for a parallel engine's
/// workers to each find theirs again.
pub const MAX_IDLE_PER_ORIGIN: usize = 16;

/// Where a connection leads: the origin, and the proxy it goes through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    origin: Origin,
    proxy: Option<Origin>,
}

impl PoolKey {
    /// The key of a connection to `url`'s origin through `proxy`.
    pub fn new(url: &Url, proxy: Option<&Url>) -> PoolKey {
        PoolKey {
            origin: url.origin(),
            proxy: proxy.map(Url::origin),
        }
    }
}

/// The idle connections of one client.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<(PoolKey, Connection, Instant)>>,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Pool {
        Pool::default()
    }

    /// An idle connection to `key` that still looks open, most recent first.
    pub fn take(&self, key: &PoolKey) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(_, _, since)| since.elapsed() < IDLE_KEEP);
        while let Some(i) = idle.iter().rposition(|(k, _, _)| k == key) {
            let (_, conn, _) = idle.remove(i);
            if !conn.is_stale() {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to `key`.
    pub fn put(&self, key: PoolKey, mut conn: Connection) {
        // A watch belongs to the request that set it.
        if conn.set_watch(None).is_err() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.iter().filter(|(k, _, _)| *k == key).count() >= MAX_IDLE_PER_ORIGIN {
            if let Some(oldest) = idle.iter().position(|(k, _, _)| *k == key) {
                idle.remove(oldest);
            }
        }
        idle.push((key, conn, Instant::now()));
    }

    /// How many connections are idle.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }
}
