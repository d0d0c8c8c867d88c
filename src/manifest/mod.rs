//! `.parts` manifests (being written).
