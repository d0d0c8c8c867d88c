//! Quoting text that came from outside (a `Location`, a URL) in a message:
//! escaped so it cannot drive a terminal, and cut so that a 60 KB value
//! does not become a 60 KB error line.

/// Text up to this many bytes is quoted whole.
pub const QUOTED_WHOLE: usize = 256;

/// Of longer text, this many bytes are shown, then the length: enough to
/// recognise a URL (scheme, host, the start of the path).
pub const QUOTED_START: usize = 200;

/// `text` as it is when short, else its first [`QUOTED_START`] bytes (cut
/// at a character boundary), `…` and its length: `http://h/aaa… (60019
/// bytes)`.
pub fn cut(text: &str) -> String {
    if text.len() <= QUOTED_WHOLE {
        return text.to_owned();
    }
    let end = (0..=QUOTED_START)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// `raw` in double quotes, escaped (control characters and, when it is
/// not UTF-8, every byte outside printable ASCII as `\xNN`), cut as
/// [`cut`] cuts: `"/caf\xe9"`.
pub fn quote(raw: &[u8]) -> String {
    let shown = if raw.len() <= QUOTED_WHOLE {
        raw
    } else {
        &raw[..QUOTED_START]
    };
    let mut out = match std::str::from_utf8(shown) {
        Ok(text) => format!("{text:?}"),
        // A UTF-8 value cut inside a character is quoted up to the cut.
        Err(e) if raw.len() > QUOTED_WHOLE && std::str::from_utf8(raw).is_ok() => {
            format!(
                "{:?}",
                std::str::from_utf8(&shown[..e.valid_up_to()]).unwrap_or("")
            )
        }
        Err(_) => format!("\"{}\"", shown.escape_ascii()),
    };
    if raw.len() > QUOTED_WHOLE {
        out.push_str(&format!("… ({} bytes)", raw.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_whole_and_long_text_is_its_start_and_length() {
        assert_eq!(cut("http://h/a"), "http://h/a");
        let long = format!("http://h/{}", "a".repeat(60_000));
        let shown = cut(&long);
        assert!(shown.starts_with("http://h/aaa"));
        assert!(shown.ends_with("… (60009 bytes)"), "{shown}");
        assert!(shown.len() < QUOTED_START + 30);
        // A character is never split.
        let wide = "é".repeat(200);
        assert!(cut(&wide).starts_with(&"é".repeat(100)));
        assert!(cut(&wide).ends_with("… (400 bytes)"));
    }

    #[test]
    fn quoted_bytes_are_escaped_and_cut() {
        assert_eq!(quote(b"/a b"), "\"/a b\"");
        assert_eq!(quote(b"/caf\xe9"), "\"/caf\\xe9\"");
        assert_eq!(quote(b"/\x1b[2J"), "\"/\\u{1b}[2J\"");
        let mut long = b"/\xff".to_vec();
        long.resize(60_000, b'a');
        let shown = quote(&long);
        assert!(shown.starts_with("\"/\\xffaaa"), "{shown}");
        assert!(shown.ends_with("\"… (60000 bytes)"), "{shown}");
        let wide = "é".repeat(200);
        assert_eq!(
            quote(wide.as_bytes()),
            format!("{:?}… (400 bytes)", "é".repeat(100))
        );
    }
}
