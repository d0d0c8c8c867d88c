//! SHA-256, for the `(sha256=…)` part attribute.
//!
//! With the default `tls` feature the digest comes from `ring`, which the TLS
//! stack already links, so it costs no extra code. Without it (a plain-HTTP
//! build) a small FIPS 180-4 implementation stands in; both are checked
//! against the NIST test vectors below.

/// An incremental SHA-256 computation.
#[derive(Clone)]
pub struct Sha256 {
    inner: imp::State,
}

impl Sha256 {
    /// A fresh digest.
    pub fn new() -> Sha256 {
        Sha256 {
            inner: imp::State::new(),
        }
    }

    /// Adds `bytes` to the message.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// The digest of everything added.
    pub fn finish(self) -> [u8; 32] {
        self.inner.finish()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Sha256::new()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
}

/// The digest of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    hasher.finish()
}

/// `digest` as 64 lower-case hex digits.
pub fn to_hex(digest: &[u8; 32]) -> String {
    crate::util::hex::encode(digest)
}

/// Parses exactly 64 hex digits (either case); `None` otherwise.
pub fn parse_hex(text: &str) -> Option<[u8; 32]> {
    crate::util::hex::decode(text)
}

#[cfg(feature = "tls")]
mod imp {
    #[derive(Clone)]
    pub struct State(ring::digest::Context);

    impl State {
        pub fn new() -> State {
            State(ring::digest::Context::new(&ring::digest::SHA256))
        }

        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        pub fn finish(self) -> [u8; 32] {
            let mut out = [0u8; 32];
            out.copy_from_slice(self.0.finish().as_ref());
            out
        }
    }
}

#[cfg(not(feature = "tls"))]
mod imp {
    pub use super::portable::State;
}

/// FIPS 180-4 SHA-256 in plain Rust: the digest of plain-HTTP builds, and
/// the reference the `ring` one is tested against.
#[cfg_attr(feature = "tls", allow(dead_code))]
mod portable {
    use crate::util::block_hash::{to_be_bytes, BlockHash};

    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    const INITIAL: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    #[derive(Clone)]
    pub struct State(BlockHash<8>);

    impl State {
        pub fn new() -> State {
            State(BlockHash::new(INITIAL, compress))
        }

        pub fn update(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }

        pub fn finish(self) -> [u8; 32] {
            let mut out = [0u8; 32];
            to_be_bytes(&self.0.finish(), &mut out);
            out
        }
    }

    fn compress(h: &mut [u32; 8], block: &[u8; 64]) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, value) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS 180-4 example messages (NIST CSRC "SHA256.pdf", SHA-2 examples)
    /// and the one-million-'a' vector.
    fn nist_vectors() -> Vec<(Vec<u8>, &'static str)> {
        vec![
            (
                b"".to_vec(),
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                b"abc".to_vec(),
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
            (
                b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".to_vec(),
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
            ),
            (
                vec![b'a'; 1_000_000],
                "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
            ),
        ]
    }

    #[test]
    fn nist_vectors_match_in_one_update() {
        for (message, expected) in nist_vectors() {
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
        // Every length around the padding boundaries.
        for len in 0..200 {
            let mut portable = portable::State::new();
            portable.update(&message[..len]);
            assert_eq!(portable.finish(), digest(&message[..len]), "length {len}");
        }
    }

    #[test]
    fn hex_round_trips_and_rejects_bad_text() {
        let d = digest(b"abc");
        assert_eq!(parse_hex(&to_hex(&d)), Some(d));
        assert_eq!(parse_hex(&to_hex(&d).to_uppercase()), Some(d));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
        assert_eq!(parse_hex(&"0".repeat(65)), None);
    }
}
