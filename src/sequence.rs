//! File sequences (being written).
