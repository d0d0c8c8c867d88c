//! Prefetching parts: the next parts of a manifest fetched on worker threads
//! while the consumer still reads the current one.
//!
//! Owns the workers and the hand-over of one part's bytes. Each started part
//! gets a [`Slot`]: a bounded channel its worker fills with the part's bytes
//! (at most [`PART_BUFFER`] ahead of the consumer, then the worker waits —
//! back-pressure, so memory is bounded by window × buffer however long the
//! stream), and the consumer drains in order. A part's alternatives and its
//! mid-stream failover run inside the worker, through the same
//! [`part`](crate::part) code as a part read in place.
//!
//! Which parts to start, and in which order to read them, is the manifest
//! expander's business: this module only runs what it is given.
//!
//! ```text
//!   expander ──job──▶ [ worker 1 … worker W ] ──events──▶ slot k, slot k+1, …
//!      ▲                                                      │
//!      └──────────────── reads slot k to its end, then k+1 ───┘
//! ```

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::client::Client;
use crate::error::Error;
use crate::http::Response;
use crate::part::{self, IsManifest, Opened, PartPlan};
use crate::url::Url;

/// The most bytes of one part fetched ahead of the consumer.
pub const PART_BUFFER: usize = 4 * 1024 * 1024;

/// Chunks sent through a slot are at most this long (the HTTP layer's
/// read buffer); the channel's bound is `PART_BUFFER` over this.
const MAX_EVENT_BYTES: usize = 64 * 1024;

/// What a worker reports about its part, in order.
pub enum Event {
    /// The part's bytes, next in order.
    Data(Vec<u8>),
    /// The part ended; this alternative served it.
    End {
        /// The alternative that served it (for the cache).
        serving: Url,
    },
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

/// One part being fetched ahead.
pub struct Slot {
    events: Receiver<Event>,
}

impl Slot {
    /// The next event, waiting for the worker if need be. A worker that went
    /// away without finishing (it cannot, short of a panic) reads as a
    /// failure rather than a hang.
    pub fn next_event(&self) -> Event {
        self.events.recv().unwrap_or_else(|_| {
            Event::Failed(Error::new(
                crate::ErrorKind::Io,
                "a prefetch worker stopped without finishing its part",
            ))
        })
    }
}

struct Job {
    client: Client,
    plan: PartPlan,
    is_manifest: IsManifest,
    events: SyncSender<Event>,
}

/// A fixed set of worker threads, started on first use and stopped when
/// dropped (a worker finishes the send it is blocked on, sees its slot gone,
/// and takes the next job or ends).
pub struct Prefetcher {
    workers: usize,
    jobs: Option<mpsc::Sender<Job>>,
    handles: Vec<JoinHandle<()>>,
}

impl Prefetcher {
    /// Up to `workers` parts fetched at once.
    pub fn new(workers: usize) -> Prefetcher {
        Prefetcher {
            workers: workers.max(1),
            jobs: None,
            handles: Vec::new(),
        }
    }

    /// Starts fetching `plan`; its events arrive in the returned slot.
    pub fn start(&mut self, client: &Client, plan: PartPlan, is_manifest: IsManifest) -> Slot {
        let (events, receiver) = mpsc::sync_channel(PART_BUFFER / MAX_EVENT_BYTES);
        let job = Job {
            client: client.clone(),
            plan,
            is_manifest,
            events,
        };
        let jobs = self.jobs.get_or_insert_with(|| {
            let (sender, receiver) = mpsc::channel::<Job>();
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..self.workers {
                let receiver = Arc::clone(&receiver);
                self.handles
                    .push(std::thread::spawn(move || work(&receiver)));
            }
            sender
        });
        // The workers live as long as `jobs`: sending cannot fail.
        let _ = jobs.send(job);
        Slot { events: receiver }
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Closing the job queue ends each worker after its current part;
        // they are not joined, so a worker stuck on a slow server does not
        // hold up the consumer (its socket's idle timeout ends it).
        self.jobs = None;
        self.handles.clear();
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let Ok(queue) = jobs.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        run(job);
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
    loop {
        let event = match reader.advance() {
            Ok(true) => {
                let mut sent = Ok(());
                for piece in reader.chunk().chunks(MAX_EVENT_BYTES) {
                    sent = events.send(Event::Data(piece.to_vec()));
                    if sent.is_err() {
                        break;
                    }
                }
                if sent.is_err() {
                    return;
                }
                continue;
            }
            Ok(false) => Event::End {
                serving: reader.serving_url().clone(),
            },
            Err(err) => Event::Failed(err),
        };
        let _ = events.send(event);
        return;
    }
}
