//! `-i/--input-file FILE`: many downloads from one command, as wget's and
//! aria2c's `-i` do.
//!
//! Owns reading the list (one URL a line, optionally followed by
//! whitespace and the file to save it as; blank lines and `#` comments
//! skipped), running its downloads `-j` at a time with the command's other
//! options, and the summary and exit status at the end. Each download is
//! the same as one given on the command line (`cli::download_to_output`).

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use partfetch::Error;

use super::args::{looks_like_url, with_scheme, Download, Output};
use super::{events, exit, exit_code};

/// One line of the list: a URL, and the file to save it as.
#[derive(Debug, PartialEq)]
pub struct Item {
    /// The URL, `http://` added when it names no scheme (as on the
    /// command line).
    pub url: String,
    /// The file named after it, if any.
    pub file: Option<PathBuf>,
}

/// Reads the list `name` names (`-`: standard input) and runs its
/// downloads, after `d.url` when one was given too; returns the exit
/// status: 0 when all succeed, else the highest of the failures'; 7 when
/// the list cannot be read, 2 when a line of it is not a download.
pub fn run(d: &Download, name: &str) -> i32 {
    let text = match read(name) {
        Ok(text) => text,
        Err(why) => {
            say!("partfetch: {why}");
            return exit::LOCAL_IO;
        }
    };
    let mut items = match parse_list(&text, name) {
        Ok(items) => items,
        Err(why) => {
            say!("partfetch: {why}");
            return exit::USAGE;
        }
    };
    if !d.url.is_empty() {
        items.insert(
            0,
            Item {
                url: d.url.clone(),
                file: None,
            },
        );
    }
    if items.is_empty() {
        say!("partfetch: -i {name}: no URL in it");
        return exit::USAGE;
    }
    let jobs = d
        .parallel
        .unwrap_or(partfetch::engine::DEFAULT_PARALLEL)
        .clamp(1, items.len());
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, Error)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let at = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(at) else {
                    break;
                };
                if let Err(err) = super::download_to_output(&one_download(d, item)) {
                    // A worker that panicked poisons the lock; what it
                    // held is still the list of failures.
                    match failures.lock() {
                        Ok(mut list) => list.push((at, err)),
                        Err(poisoned) => poisoned.into_inner().push((at, err)),
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    failures.sort_by_key(|&(at, _)| at);
    let done = items.len() - failures.len();
    let worst = failures
        .iter()
        .map(|(_, err)| exit_code(err.kind()))
        .max()
        .unwrap_or(exit::OK);
    if !d.quiet || !failures.is_empty() {
        say!(
            "partfetch: -i {name}: {done} done, {} failed",
            failures.len()
        );
    }
    for (at, err) in &failures {
        say!(
            "partfetch: failed: {}: {}",
            items[*at].url,
            events::describe(err, d)
        );
    }
    worst
}

/// The download of one line: the command's options, its URL and file.
fn one_download(d: &Download, item: &Item) -> Download {
    let mut one = d.clone();
    one.url = item.url.clone();
    one.output = match &item.file {
        Some(path) => Output::File(path.clone()),
        None => Output::FromUrl,
    };
    one
}

/// The text of the list `name` names, or why it cannot be read.
fn read(name: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let read = match name {
        "-" => std::io::stdin().read_to_end(&mut bytes).map(drop),
        path => std::fs::read(path).map(|b| bytes = b),
    };
    let shown = match name {
        "-" => "standard input".to_owned(),
        path => format!("{path:?}"),
    };
    read.map_err(|e| format!("-i {shown}: cannot read it ({e})"))?;
    String::from_utf8(bytes).map_err(|_| format!("-i {shown}: not UTF-8 text"))
}

/// The downloads of a list's `text`, or the first line that is not one,
/// named with the list's `name` and the line's number.
pub fn parse_list(text: &str, name: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("-i {name}, line {}", number + 1);
        let (url, file) = match line.split_once(char::is_whitespace) {
            Some((url, file)) => (url, Some(file.trim())),
            None => (line, None),
        };
        let file = match file {
            None => None,
            Some("-") => {
                return Err(format!(
                    "{}: - (standard output) would mix the downloads of the list",
                    at()
                ))
            }
            Some(f) if looks_like_url(f) => {
                return Err(format!(
                    "{}: {f:?} looks like a URL: one URL a line, then its FILE",
                    at()
                ))
            }
            Some(f) => Some(PathBuf::from(f)),
        };
        items.push(Item {
            url: with_scheme(url.to_owned()),
            file,
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_has_one_url_a_line_with_an_optional_file() {
        let text = "# mirrors\n\nhttp://h/a\n  example.com/b   my b.iso  \n\t# done\nhttp://h/c\tc";
        let items = parse_list(text, "list").unwrap();
        assert_eq!(
            items,
            vec![
                Item {
                    url: "http://h/a".into(),
                    file: None
                },
                Item {
                    url: "http://example.com/b".into(),
                    file: Some(PathBuf::from("my b.iso"))
                },
                Item {
                    url: "http://h/c".into(),
                    file: Some(PathBuf::from("c"))
                },
            ]
        );
        assert_eq!(parse_list("\n# nothing\n", "list").unwrap(), vec![]);
    }

    #[test]
    fn a_bad_line_is_refused_naming_the_list_and_the_line() {
        let err = parse_list("http://h/a\n\nhttp://h/b http://h/c\n", "urls.txt").unwrap_err();
        assert!(err.starts_with("-i urls.txt, line 3: "), "{err}");
        let err = parse_list("http://h/a -\n", "-").unwrap_err();
        assert!(
            err.starts_with("-i -, line 1: - (standard output)"),
            "{err}"
        );
    }
}
