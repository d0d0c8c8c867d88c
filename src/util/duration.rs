//! Durations as a person reads them in a message: `1.5 s`, `30 s`, `5 ms`.

use std::time::Duration;

/// `1.5 s`, `30 s`: durations as a person reads them in an error.
pub fn describe(d: Duration) -> String {
    if d < Duration::from_millis(100) {
        return format!("{} ms", d.as_millis().max(1));
    }
    // Integer arithmetic: float formatting would add 10 KB to the binary.
    let tenths = (d.as_millis() + 50) / 100;
    if d.subsec_millis() == 0 || tenths.is_multiple_of(10) {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_would_write_them() {
        let ms = Duration::from_millis;
        assert_eq!(describe(Duration::from_secs(30)), "30 s");
        assert_eq!(describe(ms(1500)), "1.5 s");
        assert_eq!(describe(ms(2000)), "2 s");
        assert_eq!(describe(ms(100)), "0.1 s");
        assert_eq!(describe(ms(5)), "5 ms", "not 0 s");
        assert_eq!(describe(Duration::from_micros(100)), "1 ms");
    }
}
