//! The parts of a manifest as byte streams: one part with its
//! alternatives ([`alternatives`]), and the window that fetches the next
//! parts on worker threads while the current one is read ([`window`]).
//!
//! Below the manifest layer (which decides which parts come, and in what
//! order) and above the engine (a large part is fetched in pieces like any
//! file).

pub mod alternatives;
pub mod window;
