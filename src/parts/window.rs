//! Prefetching parts: the next parts of a manifest fetched on worker threads
//! while the consumer still reads the current one.
//!
//! Owns the workers and the hand-over of one part's bytes. Each started part
//! gets a [`Slot`]: a bounded channel its worker fills with the part's bytes
//! (at most [`PART_BUFFER`] ahead of the consumer, then the worker waits —
//! back-pressure, so memory is bounded by window × buffer however long the
//! stream), and the consumer drains in order. A part's alternatives and its
//! mid-stream failover run inside the worker, through the same
//! `part` code as a part read in place.
//!
//! Which parts to start, and in which order to read them, is the manifest
//! expander's business: this module only runs what it is given.
//!
//! ```text
//!   expander ──job──▶ [ worker 1 … worker W ] ──events──▶ slot k, slot k+1, …
//!      ▲                                                      │
//!      └──────────────── reads slot k to its end, then k+1 ───┘
//! ```

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::Error;
use crate::fetch::Context;
use crate::http::Response;
use crate::parts::alternatives::{self as part, IsManifest, Opened, PartPlan};

/// The most bytes of one part fetched ahead of the consumer.
pub const PART_BUFFER: usize = 4 * 1024 * 1024;

/// A worker gathers up to this many bytes into one [`Event::Data`] (sooner
/// when no more have arrived), because each hand-over between threads costs
/// a wake-up; the channel's bound is `PART_BUFFER` over this.
const MAX_EVENT_BYTES: usize = 128 * 1024;

/// What a worker reports about its part, in order.
pub enum Event {
    /// The part's bytes, next in order.
    Data(Vec<u8>),
    /// The part ended.
    End,
    /// Alternative `index` is a manifest: the expander takes it from here.
    Manifest {
        /// Which alternative.
        index: usize,
        /// The manifest's response, its body unread (boxed: it is large,
        /// and rare beside `Data`).
        response: Box<Response>,
        /// Failures of the alternatives before it.
        causes: Vec<Error>,
    },
    /// The part failed: before any data when every alternative failed to
    /// open, else midway when none could continue.
    Failed(Error),
}

/// Buffers for [`Event::Data`], handed back by the consumer and reused by
/// the workers. Why: a buffer allocated on a worker thread and freed on the
/// consumer's scatters memory over the allocator's per-thread arenas; reuse
/// keeps the process's memory flat on endless streams.
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// Buffers kept for reuse at most.
const POOL_BUFFERS: usize = 8;

impl BufferPool {
    fn take(&self) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        reused.unwrap_or_else(|| Vec::with_capacity(MAX_EVENT_BYTES))
    }

    fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() < MAX_EVENT_BYTES {
            return;
        }
        buffer.clear();
        if let Ok(mut free) = self.free.lock() {
            if free.len() < POOL_BUFFERS {
                free.push(buffer);
            }
        }
    }
}

/// One part being fetched ahead.
pub struct Slot {
    events: Receiver<Event>,
    pool: Arc<BufferPool>,
    /// Bytes of the part its worker has received so far.
    received: Arc<AtomicU64>,
    /// Bytes of the part the consumer has taken.
    taken: Cell<u64>,
}

impl Slot {
    /// The next event, waiting for the worker if need be. A worker that went
    /// away without finishing (it cannot, short of a panic) reads as a
    /// failure rather than a hang.
    pub fn next_event(&self) -> Event {
        let event = self.events.recv().unwrap_or_else(|_| {
            Event::Failed(Error::new(
                crate::ErrorKind::Io,
                "a prefetch worker stopped without finishing its part",
            ))
        });
        if let Event::Data(bytes) = &event {
            self.taken.set(self.taken.get() + bytes.len() as u64);
        }
        event
    }

    /// Bytes of the part received and not yet taken by the consumer: the
    /// progress counts them as they arrive, not when their turn comes.
    pub fn bytes_ahead(&self) -> u64 {
        self.received
            .load(Ordering::Relaxed)
            .saturating_sub(self.taken.get())
    }

    /// The whole part, when its worker has fetched it to its end and no
    /// byte of it was taken yet: what a download stopped midway keeps of
    /// the parts fetched ahead. Never waits; the slot's events are used up
    /// either way. At most [`PART_BUFFER`] bytes, all held already.
    pub fn take_if_complete(&self) -> Option<Vec<u8>> {
        if self.taken.get() > 0 {
            return None;
        }
        let mut bytes = Vec::new();
        loop {
            match self.events.try_recv().ok()? {
                Event::Data(data) => bytes.extend_from_slice(&data),
                Event::End => return Some(bytes),
                Event::Manifest { .. } | Event::Failed(_) => return None,
            }
        }
    }

    /// Gives back the buffer of an [`Event::Data`] once its bytes are used.
    pub fn recycle(&self, buffer: Vec<u8>) {
        self.pool.give(buffer);
    }
}

struct Job {
    client: Context,
    plan: PartPlan,
    is_manifest: IsManifest,
    events: SyncSender<Event>,
    pool: Arc<BufferPool>,
    received: Arc<AtomicU64>,
}

/// Up to a fixed number of worker threads, each started only when a job
/// finds every existing one busy (a stream that keeps two parts in flight
/// runs two threads, with two connections' buffers), and stopped when the
/// prefetcher is dropped: a worker finishes the send it is blocked on, sees
/// its slot gone, and ends.
pub struct Prefetcher {
    workers: usize,
    jobs: mpsc::Sender<Job>,
    queue: Arc<Mutex<Receiver<Job>>>,
    idle: Arc<AtomicUsize>,
    handles: Vec<JoinHandle<()>>,
    pool: Arc<BufferPool>,
}

impl Prefetcher {
    /// Up to `workers` parts fetched at once.
    pub fn new(workers: usize) -> Prefetcher {
        let (jobs, queue) = mpsc::channel::<Job>();
        Prefetcher {
            workers: workers.max(1),
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            idle: Arc::new(AtomicUsize::new(0)),
            handles: Vec::new(),
            pool: Arc::new(BufferPool {
                free: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Starts fetching `plan`; its events arrive in the returned slot.
    pub fn start(&mut self, client: &Context, plan: PartPlan, is_manifest: IsManifest) -> Slot {
        let (events, receiver) = mpsc::sync_channel(PART_BUFFER / MAX_EVENT_BYTES);
        let received = Arc::new(AtomicU64::new(0));
        let job = Job {
            client: client.clone(),
            plan,
            is_manifest,
            events,
            pool: Arc::clone(&self.pool),
            received: Arc::clone(&received),
        };
        if self.idle.load(Ordering::SeqCst) == 0 && self.handles.len() < self.workers {
            let queue = Arc::clone(&self.queue);
            let idle = Arc::clone(&self.idle);
            self.handles
                .push(std::thread::spawn(move || work(&queue, &idle)));
        }
        // The queue lives as long as the prefetcher: sending cannot fail.
        let _ = self.jobs.send(job);
        Slot {
            events: receiver,
            pool: Arc::clone(&self.pool),
            received,
            taken: Cell::new(0),
        }
    }
}

// Dropping the prefetcher drops `jobs`, which closes the queue: each worker
// ends after its current part. They are not joined, so a worker stuck on a
// slow server does not hold up the consumer (its socket's idle timeout, or
// its dropped slot, ends it).

fn work(jobs: &Mutex<Receiver<Job>>, idle: &AtomicUsize) {
    loop {
        idle.fetch_add(1, Ordering::SeqCst);
        let job = jobs.lock().ok().and_then(|queue| queue.recv().ok());
        idle.fetch_sub(1, Ordering::SeqCst);
        match job {
            Some(job) => run(job),
            None => return,
        }
    }
}

/// Fetches one part into its slot; returns early when the slot is dropped.
fn run(job: Job) {
    let events = job.events;
    let opened = part::open(&job.client, job.plan, 0, Vec::new(), job.is_manifest);
    let mut reader = match opened {
        Err(err) => {
            let _ = events.send(Event::Failed(err));
            return;
        }
        Ok(Opened::Manifest {
            index,
            response,
            causes,
        }) => {
            let _ = events.send(Event::Manifest {
                index,
                response: Box::new(response),
                causes,
            });
            return;
        }
        Ok(Opened::Plain(reader)) => reader,
    };
    let mut buffer = job.pool.take();
    loop {
        let event = match reader.advance() {
            Ok(true) => {
                let mut chunk = reader.chunk();
                job.received
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                while !chunk.is_empty() {
                    let take = chunk.len().min(MAX_EVENT_BYTES - buffer.len());
                    buffer.extend_from_slice(&chunk[..take]);
                    chunk = &chunk[take..];
                    if buffer.len() == MAX_EVENT_BYTES {
                        let full = std::mem::replace(&mut buffer, job.pool.take());
                        if events.send(Event::Data(full)).is_err() {
                            return;
                        }
                    }
                }
                // Hand on what there is when waiting for more would delay it.
                if !buffer.is_empty() && !reader.has_bytes_ready() {
                    let partial = std::mem::replace(&mut buffer, job.pool.take());
                    if events.send(Event::Data(partial)).is_err() {
                        return;
                    }
                }
                continue;
            }
            Ok(false) => Event::End,
            Err(err) => Event::Failed(err),
        };
        if !buffer.is_empty() && events.send(Event::Data(buffer)).is_err() {
            return;
        }
        let _ = events.send(event);
        return;
    }
}
