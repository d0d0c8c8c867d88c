//! The checks every path in a torrent passes before it can name a file:
//! a torrent comes from anyone, and its paths are joined under the
//! download's directory, so a component must be a plain name there on
//! every system the download may be moved to.

/// The most bytes in one component: `NAME_MAX` on Linux and the BSDs, and
/// NTFS's limit in UTF-16 units for most names.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// The most components in a file's path, the torrent's name included.
/// Real torrents are a few directories deep; a path of thousands would
/// only be a way to make the directory walk or path buffers expensive.
pub const MAX_COMPONENTS: usize = 64;

/// The most bytes in a file's path, the torrent's name included and
/// separators counted: Linux's `PATH_MAX` (4096) less room for the
/// download directory itself.
pub const MAX_PATH_BYTES: usize = 3072;

/// What is wrong with a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathProblem {
    /// An empty component (or a path of none).
    Empty,
    /// `.` or `..`.
    Dots,
    /// A `/` or `\`: a separator inside what should be one name.
    Separator,
    /// A drive prefix like `C:`, which makes a Windows path absolute.
    Drive,
    /// NUL or another control character.
    Control,
    /// A name Windows reserves for a device (`CON`, `NUL`, `COM1`, …),
    /// with or without an extension.
    Reserved,
    /// Not UTF-8.
    NotUtf8,
    /// A component longer than [`MAX_COMPONENT_BYTES`].
    ComponentTooLong,
    /// More components than [`MAX_COMPONENTS`], or more bytes than
    /// [`MAX_PATH_BYTES`].
    TooLong,
    /// The same path as another file, or a file where another file's path
    /// needs a directory.
    Collision,
}

impl std::fmt::Display for PathProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PathProblem::Empty => "an empty component",
            PathProblem::Dots => "a `.` or `..` component",
            PathProblem::Separator => "a path separator inside a component",
            PathProblem::Drive => "a drive prefix",
            PathProblem::Control => "a control character",
            PathProblem::Reserved => "a name Windows reserves for a device",
            PathProblem::NotUtf8 => "bytes that are not UTF-8",
            PathProblem::ComponentTooLong => "a component longer than 255 bytes",
            PathProblem::TooLong => "too many components or bytes",
            PathProblem::Collision => "the path of another file",
        })
    }
}

/// Device names Windows reserves in every directory, whatever follows a
/// dot (`nul.txt` is the device too).
const RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Checks one component of a path: a plain file or directory name.
pub fn check_component(component: &str) -> Result<(), PathProblem> {
    if component.is_empty() {
        return Err(PathProblem::Empty);
    }
    if component == "." || component == ".." {
        return Err(PathProblem::Dots);
    }
    if component.len() > MAX_COMPONENT_BYTES {
        return Err(PathProblem::ComponentTooLong);
    }
    if component.contains(['/', '\\']) {
        return Err(PathProblem::Separator);
    }
    if component.chars().any(char::is_control) {
        return Err(PathProblem::Control);
    }
    let bytes = component.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(PathProblem::Drive);
    }
    // Windows ignores trailing spaces before the extension: `CON .txt`.
    let stem = component
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end_matches(' ');
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Err(PathProblem::Reserved);
    }
    Ok(())
}

/// Checks a whole path's components and size.
pub(crate) fn check_path(components: &[String]) -> Result<(), PathProblem> {
    if components.is_empty() {
        return Err(PathProblem::Empty);
    }
    if components.len() > MAX_COMPONENTS {
        return Err(PathProblem::TooLong);
    }
    for component in components {
        check_component(component)?;
    }
    let bytes: usize = components.iter().map(|c| c.len() + 1).sum();
    if bytes > MAX_PATH_BYTES {
        return Err(PathProblem::TooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for name in [
            "a",
            "file.txt",
            ".pad",
            ".hidden",
            "..dots",
            "a..b",
            "cone.d",
            "Console",
            "COM10",
            "LPT0",
            "Ñandú ☃",
            "note:1",
            "notes: part 1",
            "a b",
        ] {
            assert_eq!(check_component(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let cases: [(&str, PathProblem); 20] = [
            ("", PathProblem::Empty),
            (".", PathProblem::Dots),
            ("..", PathProblem::Dots),
            ("/etc", PathProblem::Separator),
            ("a/b", PathProblem::Separator),
            ("..\\x", PathProblem::Separator),
            ("a\0b", PathProblem::Control),
            ("a\nb", PathProblem::Control),
            ("\x1b[2J", PathProblem::Control),
            ("a\u{85}", PathProblem::Control),
            ("C:", PathProblem::Drive),
            ("c:evil", PathProblem::Drive),
            ("CON", PathProblem::Reserved),
            ("con", PathProblem::Reserved),
            ("nul.txt", PathProblem::Reserved),
            ("Com1.tar.gz", PathProblem::Reserved),
            ("lpt9", PathProblem::Reserved),
            ("AUX .x", PathProblem::Reserved),
            ("prn", PathProblem::Reserved),
            (&"x".repeat(256), PathProblem::ComponentTooLong),
        ];
        for (name, problem) in cases {
            assert_eq!(check_component(name), Err(problem), "{name:?}");
        }
        assert_eq!(check_component(&"x".repeat(255)), Ok(()));
    }

    #[test]
    fn whole_paths_are_bounded() {
        let path = |n: usize, len: usize| vec!["x".repeat(len); n];
        assert_eq!(check_path(&[]), Err(PathProblem::Empty));
        assert_eq!(check_path(&path(MAX_COMPONENTS, 1)), Ok(()));
        assert_eq!(
            check_path(&path(MAX_COMPONENTS + 1, 1)),
            Err(PathProblem::TooLong)
        );
        assert_eq!(check_path(&path(12, 255)), Ok(()));
        assert_eq!(check_path(&path(13, 255)), Err(PathProblem::TooLong));
    }
}
