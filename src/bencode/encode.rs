//! Bencode encoding: the inverse of `decode` for every value it accepts,
//! and the way test torrents (and, later, new ones) are written.

use super::{Node, Value};

/// The encoding of `value`. Dictionary entries are written in key order
/// whatever order a built value holds them in; a built dictionary with a
/// key twice is written twice, which the decoder then refuses.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Int(n) => {
            out.push(b'i');
            out.extend_from_slice(n.to_string().as_bytes());
            out.push(b'e');
        }
        Value::Bytes(bytes) => bytes_into(bytes, out),
        Value::List(items) => {
            out.push(b'l');
            for item in items {
                encode_into(&item.value, out);
            }
            out.push(b'e');
        }
        Value::Dict(entries) => {
            let mut sorted: Vec<&(&[u8], Node)> = entries.iter().collect();
            // Stable, so a decoded (already sorted) dictionary is kept as is.
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'd');
            for (key, node) in sorted {
                bytes_into(key, out);
                encode_into(&node.value, out);
            }
            out.push(b'e');
        }
    }
}

fn bytes_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}
