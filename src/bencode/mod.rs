//! Bencode, the encoding of `.torrent` files and of BitTorrent's tracker
//! and extension messages: a strict decoder into borrowed values that
//! remember where each came from, and an encoder.
//!
//! Strict means one text per value: integers without leading zeros or
//! `-0`, dictionary keys sorted and unique, nothing after the top value.
//! A torrent is identified by the SHA-1 of its `info` dictionary's bytes,
//! so a lenient decoder that accepted two spellings of one value would let
//! two different info-hashes describe the same content; refusing them
//! keeps "decodes" and "re-encodes to the same bytes" one property.

mod decode;
mod encode;

pub use decode::{decode, Error, MAX_DEPTH};
pub use encode::{encode, encode_into};

use std::ops::Range;

/// A decoded value and the bytes it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node<'a> {
    /// The value.
    pub value: Value<'a>,
    /// Where its encoding lies in the decoded input, from its first byte
    /// (`i`, a digit, `l` or `d`) to just after its last. A value built
    /// rather than decoded has the empty span `0..0`.
    pub span: Range<usize>,
}

/// A bencoded value, borrowing its byte strings from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// `i…e`: bencode allows any size; this decoder takes what fits an
    /// `i64`, which every length and count in a torrent does.
    Int(i64),
    /// `N:…`: a byte string, often but not always text.
    Bytes(&'a [u8]),
    /// `l…e`.
    List(Vec<Node<'a>>),
    /// `d…e`: entries in strictly increasing key order, as decoded (the
    /// encoder sorts built ones).
    Dict(Vec<(&'a [u8], Node<'a>)>),
}

impl<'a> From<Value<'a>> for Node<'a> {
    /// A built value, with no span in any input.
    fn from(value: Value<'a>) -> Node<'a> {
        Node { value, span: 0..0 }
    }
}

impl<'a> Node<'a> {
    /// The value of `key`, when this is a dictionary that has it.
    pub fn get(&self, key: &[u8]) -> Option<&Node<'a>> {
        self.value.get(key)
    }
}

impl<'a> Value<'a> {
    /// The integer, when this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The byte string, when this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The items, when this is a list.
    pub fn as_list(&self) -> Option<&[Node<'a>]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries, when this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Node<'a>)]> {
        match self {
            Value::Dict(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of `key`, when this is a dictionary that has it. A
    /// decoded dictionary is sorted, so this is a binary search; a built
    /// one may not be, so it falls back to a scan.
    pub fn get(&self, key: &[u8]) -> Option<&Node<'a>> {
        let entries = self.as_dict()?;
        match entries.binary_search_by(|(k, _)| (*k).cmp(key)) {
            Ok(i) => Some(&entries[i].1),
            Err(_) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
        }
    }
}
