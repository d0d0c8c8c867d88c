//! What SHA-1 and SHA-256 share (FIPS 180-4): bytes gathered into 64-byte
//! blocks for a compression function, and the padding that ends the
//! message with its length in bits. Each hash brings its initial words
//! and its compression function.

/// A hash of `N` 32-bit words over 64-byte blocks.
#[derive(Clone)]
pub struct BlockHash<const N: usize> {
    h: [u32; N],
    compress: fn(&mut [u32; N], &[u8; 64]),
    block: [u8; 64],
    filled: usize,
    length: u64,
}

impl<const N: usize> BlockHash<N> {
    /// A hash starting from `initial`, compressing each block with
    /// `compress`.
    pub fn new(initial: [u32; N], compress: fn(&mut [u32; N], &[u8; 64])) -> Self {
        BlockHash {
            h: initial,
            compress,
            block: [0; 64],
            filled: 0,
            length: 0,
        }
    }

    /// Adds `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.length = self.length.wrapping_add(bytes.len() as u64);
        if self.filled > 0 {
            let take = (64 - self.filled).min(bytes.len());
            self.block[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < 64 {
                return;
            }
            let block = self.block;
            (self.compress)(&mut self.h, &block);
            self.filled = 0;
        }
        let mut blocks = bytes.chunks_exact(64);
        for block in &mut blocks {
            let block: &[u8; 64] = block.try_into().expect("chunks_exact(64) gives 64 bytes");
            (self.compress)(&mut self.h, block);
        }
        let rest = blocks.remainder();
        self.block[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
    }

    /// Pads the message and returns the final words, big-endian order
    /// being the caller's to apply.
    pub fn finish(mut self) -> [u32; N] {
        let bits = self.length.wrapping_mul(8);
        let mut tail = [0u8; 72];
        tail[0] = 0x80;
        // Pad to 56 bytes mod 64, then the 8-byte length.
        let pad = if self.filled < 56 {
            56 - self.filled
        } else {
            120 - self.filled
        };
        tail[pad..pad + 8].copy_from_slice(&bits.to_be_bytes());
        let length = self.length;
        self.update(&tail[..pad + 8]);
        self.length = length;
        debug_assert_eq!(self.filled, 0);
        self.h
    }
}

/// The words as bytes, big-endian, into `out` (4 bytes a word).
pub fn to_be_bytes(words: &[u32], out: &mut [u8]) {
    for (word, slot) in words.iter().zip(out.chunks_exact_mut(4)) {
        slot.copy_from_slice(&word.to_be_bytes());
    }
}
