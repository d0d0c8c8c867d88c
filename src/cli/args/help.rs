//! The `--help` text, written from the option tables of [`defs`].
//!
//! Owns the prose around the options (what the command does, its
//! sub-commands, the exit statuses) and the layout of the options: a row
//! each, `-x, --name VALUE` and then its help, aligned in one column and
//! wrapped to 76 columns (under the name when the name leaves no room).
//! The rows are written from the tables whenever the help is shown, so the
//! help lists exactly the options the parser knows, each with its entry's
//! words.
//!
//! [`defs`]: super::defs

use std::fmt;

#[cfg(feature = "serve")]
use super::defs::{Arity, SubOpt, SUB_OPTIONS};
use super::defs::{Opt, Takes, OPTIONS};

/// Where the help of each option starts: after `  -x, --name VALUE`, for
/// names and values up to 19 characters (longer ones have the help under
/// them).
const HELP_COLUMN: usize = 26;

/// The width the help of the options is wrapped to, a margin short of an
/// 80-column terminal, as the prose around it is.
const WIDTH: usize = 76;

/// The help written before the options of a download.
const DOWNLOAD_INTRO: &str = "\
Usage: partfetch [OPTIONS] URL [FILE]

Downloads URL, streaming it while it downloads. A URL whose path ends in
.parts (or served as text/parts-manifest) is a manifest: the stream is its
parts, in order. A URL containing -seq is a file sequence, saved as
FILE-file1, FILE-file2, ...

partfetch FILE.torrent [DIR] (or the URL of one) downloads the torrent's
files from its swarm into DIR (default: the current directory), checks
every piece, and exits once all are there (with --seed, it goes on
uploading). partfetch seed FILE.torrent DIR uploads the torrent's files
found in DIR, each piece checked first, until Ctrl-C, --seed-ratio or
--seed-time.

partfetch FILE.meta4 [DIR] (or the URL of one, or a URL served as
application/metalink4+xml) downloads the files a Metalink document lists
into DIR, each from its mirrors, and checks each one's size and hashes
(exit 6 on a mismatch).

";

/// The help of the FILE argument, laid out as an option.
const FILE_HELP: &str = "where to save; '-' for standard output; default: the last segment \
                         of the URL's path, less a manifest's .parts (also the name inside FILE when FILE is a \
                         directory); a device or named pipe is written in place";

/// The help written after the options of a download.
const EXIT_STATUS: &str = "
Exit status: 0 success, 1 other failure (protocol, manifest, redirect, URL),
2 usage, 3 not found (404, 410), 4 other HTTP status, 5 network or TLS,
6 integrity (size or digest mismatch), 7 local file or stream (also when
--resume cannot continue FILE.partfetch), 130 stopped by Ctrl-C (143 by
SIGTERM).
";

/// The synopsis of the sub-commands.
#[cfg(feature = "serve")]
const PUBLISH_INTRO: &str = "
Usage: partfetch split FILE (--parts N | --part-size SIZE) --to DIR... [OPTIONS]
       partfetch serve DIR [--listen ADDR:PORT] [--rate-limit RATE] [--delay MS]
       partfetch make-torrent PATH --announce URL... [OPTIONS]
       partfetch demo

";

/// Each sub-command with options, and what is said before them.
#[cfg(feature = "serve")]
const SUB_COMMANDS: [(&str, &str); 3] = [
    (
        "split",
        "\
split cuts FILE into parts, writes each into R of the directories (so that
losing any R-1 of them loses nothing) and writes NAME.parts into each:
",
    ),
    (
        "serve",
        "\
serve serves DIR over HTTP/1.1 (GET, HEAD, ranges, keep-alive), logging
one line per request on stderr:
",
    ),
    (
        "make-torrent",
        "\
make-torrent writes a .torrent of a file or a directory (hidden files inside
it left out, links followed), hashing on every core, and prints its
info-hash and the file written:
",
    ),
];

/// The help of `demo`, which has no options, written last.
#[cfg(feature = "serve")]
const DEMO: &str = "\
demo runs three servers on 127.0.0.1, splits a sample over them, stops one
and downloads the manifest: no network needed.
";

/// A help text, written out when displayed (`show!("{}", USAGE)`).
pub enum Usage {
    /// Downloading: the command and its options.
    Download,
    /// `split`, `serve`, `make-torrent` and `demo`.
    #[cfg(feature = "serve")]
    Publish,
}

/// The text of `--help`.
pub const USAGE: Usage = Usage::Download;

/// The text `--help` adds for the sub-commands, after [`USAGE`].
#[cfg(feature = "serve")]
pub const PUBLISH_USAGE: Usage = Usage::Publish;

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Usage::Download => {
                f.write_str(DOWNLOAD_INTRO)?;
                row(f, "FILE", FILE_HELP)?;
                f.write_str("Options:\n")?;
                for opt in OPTIONS {
                    row(f, &synopsis(opt), opt.help)?;
                }
                f.write_str(EXIT_STATUS)
            }
            #[cfg(feature = "serve")]
            Usage::Publish => {
                f.write_str(PUBLISH_INTRO)?;
                for (command, intro) in SUB_COMMANDS {
                    f.write_str(intro)?;
                    for opt in SUB_OPTIONS.iter().filter(|o| o.command == command) {
                        row(f, &sub_synopsis(opt), opt.help)?;
                    }
                    f.write_str("\n")?;
                }
                f.write_str(DEMO)
            }
        }
    }
}

/// How an option is written in the help: `-o, --output FILE`, with four
/// spaces in place of a missing short form, so that the long names line
/// up.
fn synopsis(opt: &Opt) -> String {
    let short = opt.short.map_or("    ".to_owned(), |c| format!("-{c}, "));
    let value = match &opt.takes {
        Takes::Value(value, _) | Takes::ValueOnce(value, _) => format!(" {}", value.name),
        Takes::Nothing(_) | Takes::Stop(_) => String::new(),
    };
    format!("{short}--{}{value}", opt.long)
}

/// How a sub-command option is written in the help: `--to DIR...`,
/// `-o, --output FILE`, the long names lined up as in [`synopsis`].
#[cfg(feature = "serve")]
fn sub_synopsis(opt: &SubOpt) -> String {
    let short = opt.short.map_or("    ".to_owned(), |c| format!("-{c}, "));
    let value = match opt.takes {
        Arity::Nothing => String::new(),
        Arity::One(value) => format!(" {value}"),
        Arity::Many(value) => format!(" {value}..."),
    };
    format!("{short}--{}{value}", opt.long)
}

/// One row: `name`, indented, then `help` wrapped from [`HELP_COLUMN`], on
/// the same line when a space at least separates them, else from the next.
fn row(f: &mut fmt::Formatter<'_>, name: &str, help: &str) -> fmt::Result {
    let name = format!("  {name}");
    let mut column = name.chars().count();
    f.write_str(&name)?;
    if column >= HELP_COLUMN {
        f.write_str("\n")?;
        column = 0;
    }
    for line in wrap(help, WIDTH - HELP_COLUMN) {
        writeln!(f, "{:pad$}{line}", "", pad = HELP_COLUMN - column)?;
        column = 0;
    }
    Ok(())
}

/// `text` in lines of `width` characters at most, broken between words (a
/// word longer than that has a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help of the row of `text` whose name is `name`, joined into one
    /// line again; `None` if there is no such row or it is out of line.
    fn help_of(text: &str, name: &str) -> Option<String> {
        let name = format!("  {name}");
        let indent = " ".repeat(HELP_COLUMN);
        let mut lines = text.lines().skip_while(|l| {
            let aligned = l.len() > HELP_COLUMN
                && l[..HELP_COLUMN].trim_end() == name
                && !l[HELP_COLUMN..].starts_with(' ');
            !(aligned || *l == name)
        });
        let first = lines.next()?;
        let first = if first == name {
            ""
        } else {
            &first[HELP_COLUMN..]
        };
        let rest = lines.take_while(|l| l.starts_with(&indent));
        let words: Vec<&str> = std::iter::once(first)
            .chain(rest)
            .flat_map(str::split_whitespace)
            .collect();
        Some(words.join(" "))
    }

    fn normalized(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn every_option_is_in_the_help_with_its_own_text() {
        let text = USAGE.to_string();
        for opt in OPTIONS {
            let name = synopsis(opt);
            assert_eq!(
                help_of(&text, &name),
                Some(normalized(opt.help)),
                "{name} in:\n{text}"
            );
        }
        assert_eq!(help_of(&text, "FILE"), Some(normalized(FILE_HELP)));
    }

    #[cfg(feature = "serve")]
    #[test]
    fn every_sub_command_option_is_in_its_command_s_help() {
        let text = PUBLISH_USAGE.to_string();
        for (i, (command, intro)) in SUB_COMMANDS.iter().enumerate() {
            let start = text.find(intro).unwrap();
            let end = SUB_COMMANDS
                .get(i + 1)
                .map_or(text.find(DEMO).unwrap(), |(_, next)| {
                    text.find(next).unwrap()
                });
            let section = &text[start..end];
            for opt in SUB_OPTIONS.iter().filter(|o| o.command == *command) {
                let name = sub_synopsis(opt);
                assert_eq!(
                    help_of(section, &name),
                    Some(normalized(opt.help)),
                    "{name} under {command}:\n{section}"
                );
            }
        }
    }

    /// Every `--name` the help mentions, in the prose too (the synopsis,
    /// the exit statuses, the help of another option).
    fn mentioned(text: &str) -> Vec<&str> {
        text.match_indices("--")
            .filter(|&(at, _)| at == 0 || !text[..at].ends_with('-'))
            .map(|(at, _)| {
                let rest = &text[at + 2..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
                    .unwrap_or(rest.len());
                rest[..end].trim_end_matches('-')
            })
            .collect()
    }

    #[test]
    fn every_option_the_help_names_exists() {
        let text = USAGE.to_string();
        for name in mentioned(&text) {
            assert!(
                OPTIONS.iter().any(|o| o.long == name),
                "the help mentions --{name}, which is no option"
            );
        }
        #[cfg(feature = "serve")]
        for name in mentioned(&PUBLISH_USAGE.to_string()) {
            assert!(
                SUB_OPTIONS.iter().any(|o| o.long == name),
                "the help of the sub-commands mentions --{name}, which is no option"
            );
        }
    }

    #[test]
    fn the_help_fits_in_80_columns_and_the_options_are_wrapped() {
        let all: String = [
            USAGE,
            #[cfg(feature = "serve")]
            PUBLISH_USAGE,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        for line in all.lines() {
            let width = line.chars().count();
            assert!(width <= 80, "{width} columns: {line}");
            let row = line.starts_with("  -") || line.starts_with(&" ".repeat(HELP_COLUMN));
            if row {
                assert!(width <= WIDTH, "{width} columns: {line}");
            }
        }
    }

    #[test]
    fn help_is_wrapped_between_words() {
        assert_eq!(wrap("a bb ccc dd", 6), ["a bb", "ccc dd"]);
        assert_eq!(wrap("abcdefgh i", 4), ["abcdefgh", "i"]);
        assert_eq!(wrap("", 4), [""]);
    }
}
