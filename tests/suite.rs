//! The test suite's own rules, read from its sources, so that a test added
//! later keeps them.
//!
//! In scope: every program a test starts is in `support::tool::TOOLS`
//! with its Debian package, and `.ci/run` installs each package (a fresh
//! machine then runs every test under `CI`, where a missing tool is a
//! failure); a skip is never printed with `eprintln!`, which the harness
//! swallows for a passing test; only the shared helper decides what `CI`
//! makes of a skip.
//!
//! Out of scope: whether the programs work (the tests that run them say
//! so), and the swarm bed's script, which checks its own tools.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use support::tool::{ESSENTIAL_PACKAGES, TOOLS};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `tests/` but this one, with its text.
fn test_sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in fs::read_dir(dir).expect("read tests/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("suite.rs") {
                let text = fs::read_to_string(&path).expect("read a test source");
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("tests"), &mut out);
    assert!(out.len() > 10, "found only {} test sources", out.len());
    out
}

/// The string literals that follow each `call` in `text`: the `"x"` of
/// `Command::new("x")`.
fn literal_arguments<'a>(text: &'a str, call: &str) -> Vec<&'a str> {
    text.match_indices(call)
        .filter_map(|(at, _)| {
            let rest = text[at + call.len()..].trim_start().strip_prefix('"')?;
            rest.split('"').next()
        })
        .collect()
}

/// The strings listed in a `const TOOLS: [&str; N] = [ ... ];` (the swarm
/// test's list of what its bed runs).
fn tools_array(text: &str) -> Vec<&str> {
    let Some(start) = text.find("const TOOLS: [&str;") else {
        return Vec::new();
    };
    let body = &text[start..];
    let body = &body[body.find("= [").map_or(0, |i| i + 3)..];
    let body = &body[..body.find("];").unwrap_or(body.len())];
    body.split('"').skip(1).step_by(2).collect()
}

#[test]
fn every_program_a_test_starts_is_listed_with_its_package() {
    let mut unknown: Vec<String> = Vec::new();
    let mut seen = 0;
    for (path, text) in test_sources() {
        let mut programs = literal_arguments(&text, "Command::new(");
        programs.extend(literal_arguments(&text, "require_tool("));
        programs.extend(literal_arguments(&text, "run_tool("));
        programs.extend(tools_array(&text));
        for program in programs {
            seen += 1;
            if !TOOLS.iter().any(|t| t.program == program) {
                unknown.push(format!("{program} ({})", path.display()));
            }
        }
    }
    assert!(seen > 10, "found only {seen} programs: is the scan broken?");
    assert!(
        unknown.is_empty(),
        "programs not in support::tool::TOOLS: {unknown:?}"
    );
}

#[test]
fn ci_installs_the_package_of_every_program_a_test_starts() {
    let ci = fs::read_to_string(root().join(".ci/run")).expect("read .ci/run");
    let missing: Vec<String> = TOOLS
        .iter()
        .filter(|t| !ESSENTIAL_PACKAGES.contains(&t.package))
        .map(|t| format!("need {} {}", t.program, t.package))
        .filter(|line| !ci.lines().any(|l| l.trim() == line))
        .collect();
    assert!(missing.is_empty(), ".ci/run lacks the lines {missing:#?}");
}

#[test]
fn no_skip_is_printed_where_the_harness_hides_it() {
    let mut hidden: Vec<String> = Vec::new();
    for (path, text) in test_sources() {
        for (at, _) in text.match_indices("eprintln!(") {
            let call = &text[at..];
            let call = &call[..call.find(");").unwrap_or(call.len())];
            if call.to_lowercase().contains("skip") {
                let line = text[..at].lines().count() + 1;
                hidden.push(format!("{}:{line}", path.display()));
            }
        }
    }
    assert!(
        hidden.is_empty(),
        "skips printed with eprintln!, which a passing test's output hides \
         (use support::skip): {hidden:?}"
    );
}

#[test]
fn only_the_shared_helper_reads_ci() {
    // tests/swarm.rs decides for its bed in its own words, printed straight
    // to the terminal as the helper does.
    let allowed = ["support/tool.rs", "swarm.rs"];
    let readers: Vec<String> = test_sources()
        .into_iter()
        .filter(|(_, text)| text.contains("var_os(\"CI\")") || text.contains("var(\"CI\")"))
        .map(|(path, _)| path.display().to_string())
        .filter(|path| !allowed.iter().any(|a| path.ends_with(a)))
        .collect();
    assert!(
        readers.is_empty(),
        "read CI themselves instead of through support::skip: {readers:?}"
    );
}
