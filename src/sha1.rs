//! SHA-1, for BitTorrent: a torrent's info-hash and its v1 piece hashes
//! are SHA-1 digests, whatever one thinks of SHA-1 elsewhere.
//!
//! With the default `fast-sha1` feature the digest comes from RustCrypto's
//! `sha1`, which uses the CPU's SHA instructions when it has them (every
//! piece of a torrent is hashed: ring's portable SHA-1 was two thirds of a
//! download's CPU). Without it (the small plain-HTTP build) a FIPS 180-4
//! implementation of our own stands in; both are checked against the FIPS
//! 180 test vectors below, and against each other on random inputs.

/// An incremental SHA-1 computation.
#[derive(Clone)]
pub struct Sha1 {
    inner: imp::State,
}

impl Sha1 {
    /// A fresh digest.
    pub fn new() -> Sha1 {
        Sha1 {
            inner: imp::State::new(),
        }
    }

    /// Adds `bytes` to the message.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 20] {
        self.inner.finish()
    }
}

impl Default for Sha1 {
    fn default() -> Self {
        Sha1::new()
    }
}

impl std::fmt::Debug for Sha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha1")
    }
}

/// The digest of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 20] {
    let mut hasher = Sha1::new();
    hasher.update(bytes);
    hasher.finish()
}

/// `digest` as 40 lower-case hex digits (how an info-hash is shown).
pub fn to_hex(digest: &[u8; 20]) -> String {
    crate::util::hex::encode(digest)
}

/// Parses exactly 40 hex digits (either case); `None` otherwise.
pub fn parse_hex(text: &str) -> Option<[u8; 20]> {
    crate::util::hex::decode(text)
}

#[cfg(feature = "fast-sha1")]
mod imp {
    use sha1::Digest;

    #[derive(Clone)]
    pub struct State(sha1::Sha1);

    impl State {
        pub fn new() -> State {
            State(sha1::Sha1::new())
        }

        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        pub fn finish(self) -> [u8; 20] {
            self.0.finalize().into()
        }
    }
}

#[cfg(not(feature = "fast-sha1"))]
mod imp {
    pub use super::portable::State;
}

/// FIPS 180-4 SHA-1 in plain Rust: the digest of the small build, and
/// the reference the `sha1` crate's is tested against.
#[cfg_attr(feature = "fast-sha1", allow(dead_code))]
mod portable {
    use crate::util::block_hash::{to_be_bytes, BlockHash};

    const INITIAL: [u32; 5] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];

    #[derive(Clone)]
    pub struct State(BlockHash<5>);

    impl State {
        pub fn new() -> State {
            State(BlockHash::new(INITIAL, compress))
        }

        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        pub fn finish(self) -> [u8; 20] {
            let mut out = [0u8; 20];
            to_be_bytes(&self.0.finish(), &mut out);
            out
        }
    }

    fn compress(h: &mut [u32; 5], block: &[u8; 64]) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = *h;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a827999),
                20..=39 => (b ^ c ^ d, 0x6ed9eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1bbcdc),
                _ => (b ^ c ^ d, 0xca62c1d6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (slot, value) in h.iter_mut().zip([a, b, c, d, e]) {
            *slot = slot.wrapping_add(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180 example messages (NIST CSRC "SHA1.pdf" and FIPS 180-1
    /// appendices A-C) and the empty message.
    fn fips_vectors() -> Vec<(Vec<u8>, &'static str)> {
        vec![
            (b"".to_vec(), "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (b"abc".to_vec(), "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
            (
                vec![b'a'; 1_000_000],
                "34aa973cd4c4daa4f61eeb2bdbad27316534016f",
            ),
        ]
    }

    #[test]
    fn fips_vectors_match() {
        for (message, expected) in fips_vectors() {
            assert_eq!(
                to_hex(&digest(&message)),
                expected,
                "{} bytes",
                message.len()
            );
            let mut portable = portable::State::new();
            portable.update(&message);
            assert_eq!(to_hex(&portable.finish()), expected);
        }
    }

    #[test]
    fn updates_split_anywhere_give_the_same_digest() {
        let message: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = digest(&message);
        for split in 0..=message.len() {
            let mut portable = portable::State::new();
            portable.update(&message[..split]);
            portable.update(&message[split..]);
            assert_eq!(portable.finish(), whole, "split at {split}");
        }
    }

    /// The portable digest agrees with the `sha1` crate's (SHA
    /// instructions where the CPU has them) on random messages of every
    /// length around the padding boundaries and some longer ones.
    #[cfg(feature = "fast-sha1")]
    #[test]
    fn portable_agrees_with_the_sha1_crate_on_random_inputs() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let lengths = (0..200).chain([511, 512, 513, 4095, 10_000, 65_537]);
        for len in lengths {
            let message: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut portable = portable::State::new();
            // Fed in two uneven updates, to cross block boundaries.
            let cut = (next() as usize) % (len + 1);
            portable.update(&message[..cut]);
            portable.update(&message[cut..]);
            let mut fast = super::imp::State::new();
            fast.update(&message);
            assert_eq!(portable.finish(), fast.finish(), "length {len}");
        }
    }
}
