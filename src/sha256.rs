//! SHA-256 (being written).
