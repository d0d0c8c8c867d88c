//! CRC-32 (ISO-HDLC, the polynomial of gzip, zip and PNG), as RFC 1952
//! section 8 gives it: the check a gzip member's trailer carries.
//!
//! The deflate crate decodes only; the check is this crate's own, a table
//! of 256 words built at compile time, so that no crate is added for it.

/// The reversed polynomial 0x04C11DB7.
const POLYNOMIAL: u32 = 0xEDB8_8320;

/// The remainder of each byte value, built once by the compiler.
const TABLE: [u32; 256] = table();

const fn table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 {
                POLYNOMIAL ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
}

/// A running CRC-32 over bytes given in any number of slices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Crc32 {
    /// The register, inverted, as the algorithm keeps it between slices.
    state: u32,
}

impl Crc32 {
    /// The CRC of no bytes so far.
    pub fn new() -> Crc32 {
        Crc32::default()
    }

    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut c = !self.state;
        for &b in bytes {
            c = TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
        }
        self.state = !c;
    }

    /// The CRC of every byte added.
    pub fn value(&self) -> u32 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value_in_any_split() {
        // The check value of the CRC catalogue for "123456789".
        let mut whole = Crc32::new();
        whole.update(b"123456789");
        assert_eq!(whole.value(), 0xCBF4_3926);
        let mut split = Crc32::new();
        split.update(b"1234");
        split.update(b"");
        split.update(b"56789");
        assert_eq!(split.value(), 0xCBF4_3926);
        assert_eq!(Crc32::new().value(), 0);
    }
}
