//! Bytes as lower-case hex digits: how digests and info-hashes are shown,
//! and read back from a user or a control file.

/// `bytes` as two lower-case hex digits each.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 15)] as char);
    }
    text
}

/// Exactly `2 * N` hex digits (either case) as `N` bytes; `None` otherwise.
pub fn decode<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_byte_is_two_lower_case_digits() {
        assert_eq!(super::encode(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(super::encode(&[]), "");
    }

    #[test]
    fn decoding_takes_either_case_and_exactly_the_length() {
        assert_eq!(super::decode::<2>("a5FF"), Some([0xa5, 0xff]));
        assert_eq!(super::decode::<2>("a5f"), None);
        assert_eq!(super::decode::<2>("a5fff"), None);
        assert_eq!(super::decode::<1>("g0"), None);
        assert_eq!(super::decode::<1>("+1"), None);
    }
}
