//! The validity window of an X.509 certificate, read from its DER bytes.
//!
//! Owns walking a certificate's DER far enough to reach `validity` and
//! reading its two times (UTCTime or GeneralizedTime, RFC 5280 section
//! 4.1.2.5). A certificate trusted because the user's CA file holds the
//! very same bytes skips webpki's chain building, which is where its dates
//! would otherwise be checked; rustls does not expose them, so they are
//! read here. Nothing else of the certificate is interpreted: webpki
//! parses it too, and checks its name and signatures.

use std::fmt;

/// A certificate's `notBefore` and `notAfter`, in seconds since the Unix
/// epoch (negative before 1970).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// Whether `now` (seconds since the epoch) is inside the window, both
    /// ends included as RFC 5280 says.
    pub fn contains(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

/// Why a certificate's validity could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityError {
    /// The bytes end inside an element: more would be needed.
    Partial,
    /// The bytes are not a certificate as DER spells one: what was wrong.
    Invalid(&'static str),
}

impl fmt::Display for ValidityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValidityError::Partial => f.write_str("certificate cut short"),
            ValidityError::Invalid(what) => write!(f, "certificate not readable: {what}"),
        }
    }
}

impl std::error::Error for ValidityError {}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The validity window of the DER certificate `der`.
///
/// `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version
/// OPTIONAL, serialNumber INTEGER, signature SEQUENCE, issuer SEQUENCE,
/// validity SEQUENCE { notBefore Time, notAfter Time }, … } … }`.
pub fn validity(der: &[u8]) -> Result<Validity, ValidityError> {
    let (certificate, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(certificate, SEQUENCE)?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION)?.1;
    }
    let (_, rest) = element(tbs, INTEGER)?;
    let (_, rest) = element(rest, SEQUENCE)?;
    let (_, rest) = element(rest, SEQUENCE)?;
    let (validity, _) = element(rest, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, rest) = time(rest)?;
    if !rest.is_empty() {
        return Err(ValidityError::Invalid("more than two times in validity"));
    }
    Ok(Validity {
        not_before,
        not_after,
    })
}

/// The contents of the element at the start of `input`, which must have
/// the tag `tag`, and what follows it.
fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), ValidityError> {
    let (&found, rest) = input.split_first().ok_or(ValidityError::Partial)?;
    if found != tag {
        return Err(ValidityError::Invalid("an unexpected element"));
    }
    let (&first, mut rest) = rest.split_first().ok_or(ValidityError::Partial)?;
    let length = match first {
        0..=0x7f => usize::from(first),
        0x81..=0x84 => {
            let count = usize::from(first & 0x7f);
            if rest.len() < count {
                return Err(ValidityError::Partial);
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
        }
        _ => return Err(ValidityError::Invalid("a length DER does not allow")),
    };
    if rest.len() < length {
        return Err(ValidityError::Partial);
    }
    Ok(rest.split_at(length))
}

/// One `Time` at the start of `input` as seconds since the epoch, and what
/// follows it.
fn time(input: &[u8]) -> Result<(i64, &[u8]), ValidityError> {
    let (&tag, _) = input.split_first().ok_or(ValidityError::Partial)?;
    let (text, rest) = match tag {
        UTC_TIME | GENERALIZED_TIME => element(input, tag)?,
        _ => return Err(ValidityError::Invalid("a validity time of another type")),
    };
    let bad = ValidityError::Invalid("a validity time not in the form RFC 5280 requires");
    let digits = text.strip_suffix(b"Z").ok_or(bad)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let number = |range: std::ops::Range<usize>| {
        digits[range]
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'))
    };
    let (year, clock) = match (tag, digits.len()) {
        // Two-digit years: 50 to 99 are 1950 to 1999 (RFC 5280).
        (UTC_TIME, 12) => {
            let yy = number(0..2);
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (GENERALIZED_TIME, 14) => (number(0..4), 4),
        _ => return Err(bad),
    };
    let month = number(clock..clock + 2);
    let day = number(clock + 2..clock + 4);
    let hour = number(clock + 4..clock + 6);
    let minute = number(clock + 6..clock + 8);
    let second = number(clock + 8..clock + 10);
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return Err(bad);
    }
    let days = crate::http::date::days_from_civil(year, month, day);
    if crate::http::date::civil_from_days(days) != (year, month, day) {
        return Err(bad);
    }
    Ok((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element with tag `tag` around `contents`.
    fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend_from_slice(&[0x81, n as u8]),
            n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    /// The skeleton of a certificate with this validity, and a version
    /// field when `versioned`.
    fn certificate(times: &[u8], versioned: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if versioned {
            tbs.extend(der(VERSION, &der(INTEGER, &[2])));
        }
        tbs.extend(der(INTEGER, &[0x01, 0x23]));
        tbs.extend(der(SEQUENCE, &der(0x06, &[0x2a, 0x86])));
        tbs.extend(der(SEQUENCE, &[0x55; 200]));
        tbs.extend(der(SEQUENCE, times));
        tbs.extend(der(SEQUENCE, b"subject and the rest"));
        let mut body = der(SEQUENCE, &tbs);
        body.extend(der(SEQUENCE, b"signature algorithm"));
        der(SEQUENCE, &body)
    }

    fn times(before: (u8, &str), after: (u8, &str)) -> Vec<u8> {
        let mut out = der(before.0, before.1.as_bytes());
        out.extend(der(after.0, after.1.as_bytes()));
        out
    }

    #[test]
    fn reads_utc_and_generalized_times_with_or_without_a_version() {
        let window = times(
            (UTC_TIME, "200101000000Z"),
            (GENERALIZED_TIME, "20510101000000Z"),
        );
        for versioned in [true, false] {
            let v = validity(&certificate(&window, versioned)).unwrap();
            assert_eq!(v.not_before, 1_577_836_800, "2020-01-01");
            assert_eq!(v.not_after, 2_556_144_000, "2051-01-01");
            assert!(v.contains(v.not_before) && v.contains(v.not_after));
            assert!(!v.contains(v.not_before - 1) && !v.contains(v.not_after + 1));
        }
        // A two-digit year of 50 or more is of the 1900s.
        let old = times((UTC_TIME, "500101000000Z"), (UTC_TIME, "691231235959Z"));
        let v = validity(&certificate(&old, true)).unwrap();
        assert_eq!(v.not_before, -631_152_000);
        assert_eq!(v.not_after, -1);
    }

    #[test]
    fn reads_a_certificate_rcgen_makes() {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2021, 3, 4);
        params.not_after = rcgen::date_time_ymd(2061, 5, 6);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let v = validity(cert.der()).unwrap();
        assert_eq!(v.not_before, 1_614_816_000);
        assert_eq!(v.not_after, 2_882_563_200);
    }

    #[test]
    fn a_cut_certificate_is_partial_and_a_wrong_one_invalid() {
        let whole = certificate(
            &times((UTC_TIME, "200101000000Z"), (UTC_TIME, "300101000000Z")),
            true,
        );
        for len in 0..whole.len() {
            assert_eq!(
                validity(&whole[..len]),
                Err(ValidityError::Partial),
                "{len}"
            );
        }
        let bad_times = [
            times((UTC_TIME, "200101000000"), (UTC_TIME, "300101000000Z")),
            times((UTC_TIME, "200230000000Z"), (UTC_TIME, "300101000000Z")),
            times((UTC_TIME, "201301000000Z"), (UTC_TIME, "300101000000Z")),
            times((UTC_TIME, "200101240000Z"), (UTC_TIME, "300101000000Z")),
            times((UTC_TIME, "2001010000+0Z"), (UTC_TIME, "300101000000Z")),
            times(
                (GENERALIZED_TIME, "200101000000Z"),
                (UTC_TIME, "300101000000Z"),
            ),
            times((0x0c, "200101000000Z"), (UTC_TIME, "300101000000Z")),
        ];
        for window in bad_times {
            assert!(matches!(
                validity(&certificate(&window, true)),
                Err(ValidityError::Invalid(_))
            ));
        }
        assert!(matches!(
            validity(&[SEQUENCE, 0x80, 0, 0]),
            Err(ValidityError::Invalid(_))
        ));
        assert!(matches!(validity(b"hello"), Err(ValidityError::Invalid(_))));
    }
}
