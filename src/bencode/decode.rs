//! The strict bencode decoder: every input is either one value spelled the
//! one way bencode allows, or an [`Error`] naming the byte where it went
//! wrong. It never panics and never allocates beyond the values it returns.

use super::{Node, Value};

/// Lists and dictionaries nested deeper than this are refused. The decoder
/// recurses once per level, so the bound keeps a hostile `llll…` from
/// exhausting the stack; real torrents nest four or five deep (the
/// `file tree` of a v2 torrent follows directory depth, still far below).
pub const MAX_DEPTH: usize = 64;

/// Why an input is not (strict) bencode. `offset` is the byte of the input
/// where the problem was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The input is longer than the caller allows; nothing was decoded.
    TooLarge {
        /// The input's length.
        length: usize,
        /// The caller's bound.
        max: usize,
    },
    /// The input ends inside a value (or is empty).
    Truncated {
        /// The input's length, where more was expected.
        offset: usize,
    },
    /// A byte that cannot start or continue a value here.
    Unexpected {
        /// Where.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// An integer or string length with no digits (`ie`, `i-e`).
    NoDigits {
        /// Where the digits should have been.
        offset: usize,
    },
    /// `i03e` or `03:abc`: a number with a leading zero.
    LeadingZero {
        /// Where the zero is.
        offset: usize,
    },
    /// `i-0e`.
    NegativeZero {
        /// Where the minus sign is.
        offset: usize,
    },
    /// An integer outside `i64`.
    IntegerOverflow {
        /// Where the integer's digits start.
        offset: usize,
    },
    /// A byte string longer than what is left of the input.
    LengthOverflow {
        /// Where the length starts.
        offset: usize,
    },
    /// A dictionary key that is not a byte string.
    KeyNotString {
        /// Where the key starts.
        offset: usize,
    },
    /// A dictionary key not greater than the one before it.
    UnsortedKey {
        /// Where the key starts.
        offset: usize,
    },
    /// A dictionary key equal to the one before it.
    DuplicateKey {
        /// Where the key starts.
        offset: usize,
    },
    /// Lists and dictionaries nested deeper than [`MAX_DEPTH`].
    TooDeep {
        /// Where the list or dictionary one level too deep starts.
        offset: usize,
    },
    /// Bytes after the top value.
    TrailingBytes {
        /// Where the top value ended.
        offset: usize,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::TooLarge { length, max } => {
                write!(f, "{length} bytes, more than the maximum of {max}")
            }
            Error::Truncated { offset } => write!(f, "cut short at byte {offset}"),
            Error::Unexpected { offset, byte } => {
                write!(f, "unexpected byte 0x{byte:02x} at byte {offset}")
            }
            Error::NoDigits { offset } => write!(f, "number without digits at byte {offset}"),
            Error::LeadingZero { offset } => write!(f, "leading zero at byte {offset}"),
            Error::NegativeZero { offset } => write!(f, "negative zero at byte {offset}"),
            Error::IntegerOverflow { offset } => {
                write!(f, "integer out of range at byte {offset}")
            }
            Error::LengthOverflow { offset } => {
                write!(f, "string longer than the input at byte {offset}")
            }
            Error::KeyNotString { offset } => {
                write!(f, "dictionary key is not a string at byte {offset}")
            }
            Error::UnsortedKey { offset } => {
                write!(f, "dictionary key out of order at byte {offset}")
            }
            Error::DuplicateKey { offset } => {
                write!(f, "duplicate dictionary key at byte {offset}")
            }
            Error::TooDeep { offset } => {
                write!(f, "nested deeper than {MAX_DEPTH} at byte {offset}")
            }
            Error::TrailingBytes { offset } => {
                write!(f, "bytes after the value at byte {offset}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Decodes `input`, which must be exactly one value and at most `max_len`
/// bytes long. The bound is the caller's because the right one depends on
/// what is decoded (a torrent, a tracker answer, a peer message), and
/// decoded values take several times their input's size in memory.
pub fn decode(input: &[u8], max_len: usize) -> Result<Node<'_>, Error> {
    if input.len() > max_len {
        return Err(Error::TooLarge {
            length: input.len(),
            max: max_len,
        });
    }
    let mut decoder = Decoder { input, pos: 0 };
    let node = decoder.value(0)?;
    if decoder.pos != input.len() {
        return Err(Error::TrailingBytes {
            offset: decoder.pos,
        });
    }
    Ok(node)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, Error> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(Error::Truncated { offset: self.pos })
    }

    /// Consumes `byte`, or says what was there instead.
    fn expect(&mut self, byte: u8) -> Result<(), Error> {
        match self.peek()? {
            b if b == byte => {
                self.pos += 1;
                Ok(())
            }
            b => Err(Error::Unexpected {
                offset: self.pos,
                byte: b,
            }),
        }
    }

    /// One value, `depth` lists and dictionaries deep.
    fn value(&mut self, depth: usize) -> Result<Node<'a>, Error> {
        let start = self.pos;
        let value = match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.integer()?;
                self.expect(b'e')?;
                Value::Int(n)
            }
            b'0'..=b'9' => Value::Bytes(self.bytes()?),
            b'l' | b'd' if depth >= MAX_DEPTH => return Err(Error::TooDeep { offset: start }),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Value::List(items)
            }
            b'd' => {
                self.pos += 1;
                Value::Dict(self.entries(depth)?)
            }
            byte => {
                return Err(Error::Unexpected {
                    offset: start,
                    byte,
                })
            }
        };
        Ok(Node {
            value,
            span: start..self.pos,
        })
    }

    /// A dictionary's entries, after its `d`, through its `e`.
    fn entries(&mut self, depth: usize) -> Result<Vec<(&'a [u8], Node<'a>)>, Error> {
        let mut entries: Vec<(&'a [u8], Node<'a>)> = Vec::new();
        loop {
            let offset = self.pos;
            match self.peek()? {
                b'e' => break,
                b'0'..=b'9' => {}
                _ => return Err(Error::KeyNotString { offset }),
            }
            let key = self.bytes()?;
            if let Some((previous, _)) = entries.last() {
                match key.cmp(previous) {
                    std::cmp::Ordering::Greater => {}
                    std::cmp::Ordering::Equal => return Err(Error::DuplicateKey { offset }),
                    std::cmp::Ordering::Less => return Err(Error::UnsortedKey { offset }),
                }
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.pos += 1;
        Ok(entries)
    }

    /// An integer's text (after `i`, before `e`): an optional `-`, then
    /// digits with no leading zero, never `-0`.
    fn integer(&mut self) -> Result<i64, Error> {
        let sign_at = self.pos;
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_at = self.pos;
        let digits = self.digits()?;
        if negative && digits == b"0" {
            return Err(Error::NegativeZero { offset: sign_at });
        }
        let mut n: i64 = 0;
        for &d in digits {
            let d = i64::from(d - b'0');
            // Negative numbers are built downwards so that i64::MIN fits.
            n = n
                .checked_mul(10)
                .and_then(|n| {
                    if negative {
                        n.checked_sub(d)
                    } else {
                        n.checked_add(d)
                    }
                })
                .ok_or(Error::IntegerOverflow { offset: digits_at })?;
        }
        Ok(n)
    }

    /// A run of at least one digit with no leading zero (`0` alone is fine).
    fn digits(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let count = self.input[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if count == 0 {
            return match self.input.get(start) {
                None => Err(Error::Truncated { offset: start }),
                Some(_) => Err(Error::NoDigits { offset: start }),
            };
        }
        if count > 1 && self.input[start] == b'0' {
            return Err(Error::LeadingZero { offset: start });
        }
        self.pos += count;
        Ok(&self.input[start..self.pos])
    }

    /// A byte string: its length, `:`, and that many bytes.
    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let digits = self.digits()?;
        self.expect(b':')?;
        let left = self.input.len() - self.pos;
        let mut length: usize = 0;
        for &d in digits {
            length = length
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(d - b'0')))
                .filter(|&n| n <= left)
                .ok_or(Error::LengthOverflow { offset: start })?;
        }
        let bytes = &self.input[self.pos..self.pos + length];
        self.pos += length;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::encode;
    use super::*;

    const MAX: usize = 1 << 20;

    fn err(input: &[u8]) -> Error {
        decode(input, MAX).expect_err(&String::from_utf8_lossy(input))
    }

    #[test]
    fn values_round_trip_and_record_their_spans() {
        let input = b"d4:infod6:lengthi-42e4:name3:abce4:listli0ei9223372036854775807e0:lee1:zi-9223372036854775808ee";
        let node = decode(input, MAX).unwrap();
        assert_eq!(encode(&node.value), input);
        assert_eq!(node.span, 0..input.len());
        let info = node.get(b"info").unwrap();
        assert_eq!(&input[info.span.clone()], b"d6:lengthi-42e4:name3:abce");
        assert_eq!(info.get(b"length").unwrap().value.as_int(), Some(-42));
        assert_eq!(
            node.get(b"z").unwrap().value.as_int(),
            Some(i64::MIN),
            "i64::MIN fits"
        );
        let list = node.get(b"list").unwrap().value.as_list().unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(&input[list[3].span.clone()], b"le");
        for sample in [&b"i0e"[..], b"0:", b"le", b"de", b"3:\0\xffe", b"lli1eee"] {
            assert_eq!(encode(&decode(sample, MAX).unwrap().value), sample);
        }
    }

    #[test]
    fn built_dictionaries_are_encoded_in_key_order() {
        let value = Value::Dict(vec![
            (&b"b"[..], Value::Int(1).into()),
            (&b"a"[..], Value::Bytes(b"x").into()),
        ]);
        assert_eq!(encode(&value), b"d1:a1:x1:bi1ee");
        assert_eq!(
            Node::from(value.clone()).get(b"b").unwrap().value,
            Value::Int(1)
        );
    }

    #[test]
    fn malformed_integers_are_refused() {
        assert_eq!(err(b"i03e"), Error::LeadingZero { offset: 1 });
        assert_eq!(err(b"i-03e"), Error::LeadingZero { offset: 2 });
        assert_eq!(err(b"i-0e"), Error::NegativeZero { offset: 1 });
        assert_eq!(err(b"ie"), Error::NoDigits { offset: 1 });
        assert_eq!(err(b"i-e"), Error::NoDigits { offset: 2 });
        assert_eq!(err(b"i12"), Error::Truncated { offset: 3 });
        assert_eq!(
            err(b"i12x"),
            Error::Unexpected {
                offset: 3,
                byte: b'x'
            }
        );
        assert_eq!(err(b"i+1e"), Error::NoDigits { offset: 1 });
        assert_eq!(
            err(b"i9223372036854775808e"),
            Error::IntegerOverflow { offset: 1 }
        );
        assert_eq!(
            err(b"i-9223372036854775809e"),
            Error::IntegerOverflow { offset: 2 }
        );
    }

    #[test]
    fn malformed_strings_are_refused() {
        assert_eq!(err(b"5:abc"), Error::LengthOverflow { offset: 0 });
        assert_eq!(err(b"05:abcde"), Error::LeadingZero { offset: 0 });
        assert_eq!(
            err(b"3abc"),
            Error::Unexpected {
                offset: 1,
                byte: b'a'
            }
        );
        assert_eq!(err(b"3"), Error::Truncated { offset: 1 });
        assert_eq!(
            err(b"99999999999999999999999999:x"),
            Error::LengthOverflow { offset: 0 }
        );
        assert_eq!(
            err(b"l18446744073709551616:e"),
            Error::LengthOverflow { offset: 1 }
        );
    }

    #[test]
    fn malformed_containers_are_refused() {
        assert_eq!(err(b"li1e"), Error::Truncated { offset: 4 });
        assert_eq!(err(b"d1:ai1e"), Error::Truncated { offset: 7 });
        assert_eq!(err(b"d1:a"), Error::Truncated { offset: 4 });
        assert_eq!(err(b"d1:bi1e1:ai2ee"), Error::UnsortedKey { offset: 7 });
        assert_eq!(err(b"d1:ai1e1:ai2ee"), Error::DuplicateKey { offset: 7 });
        // Keys compare as bytes: "a" < "ab" < "b".
        assert!(decode(b"d1:ai1e2:abi2e1:bi3ee", MAX).is_ok());
        assert_eq!(err(b"d2:abi1e1:ai2ee"), Error::UnsortedKey { offset: 8 });
        assert_eq!(err(b"di1ei2ee"), Error::KeyNotString { offset: 1 });
        assert_eq!(err(b"dlei2ee"), Error::KeyNotString { offset: 1 });
        assert_eq!(
            err(b"x"),
            Error::Unexpected {
                offset: 0,
                byte: b'x'
            }
        );
        assert_eq!(err(b""), Error::Truncated { offset: 0 });
        assert_eq!(
            err(b"e"),
            Error::Unexpected {
                offset: 0,
                byte: b'e'
            }
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert_eq!(err(b"i1ei2e"), Error::TrailingBytes { offset: 3 });
        assert_eq!(err(b"dee"), Error::TrailingBytes { offset: 2 });
        assert_eq!(err(b"0:\n"), Error::TrailingBytes { offset: 2 });
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            let mut v = vec![b'l'; depth];
            v.extend(std::iter::repeat_n(b'e', depth));
            v
        };
        assert!(decode(&nested(MAX_DEPTH), MAX).is_ok());
        assert_eq!(
            decode(&nested(MAX_DEPTH + 1), MAX),
            Err(Error::TooDeep { offset: MAX_DEPTH })
        );
        // Far deeper, and through dictionaries: refused at the same depth
        // without using up the stack.
        let mut deep = b"d1:a".repeat(100_000);
        deep.extend(b"e".repeat(100_000));
        assert_eq!(
            decode(&deep, usize::MAX),
            Err(Error::TooDeep {
                offset: 4 * MAX_DEPTH
            })
        );
    }

    #[test]
    fn the_size_bound_is_checked_first() {
        assert_eq!(
            decode(b"i1e", 2),
            Err(Error::TooLarge { length: 3, max: 2 })
        );
        assert!(decode(b"i1e", 3).is_ok());
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(
            err(b"d1:ai1e1:ai2ee").to_string(),
            "duplicate dictionary key at byte 7"
        );
    }
}
