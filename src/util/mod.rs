//! Small helpers every layer uses, with no knowledge of HTTP or pieces.

pub mod duration;
