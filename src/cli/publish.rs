//! `partfetch split` and `partfetch serve`: the library's `split` and
//! `serve` with the command's messages and exit codes.

use partfetch::serve::{Config, Server};
use partfetch::split::{self, Input, Plan};

use super::args::{Serve, Split};
use super::{exit, exit_code, progress::human};

/// Runs `split`; prints what was written.
pub fn split(s: &Split) -> i32 {
    let input = if s.sequence {
        Input::Sequence(s.files.clone())
    } else {
        Input::File(s.files[0].clone())
    };
    let mut name = s
        .name
        .clone()
        .unwrap_or_else(|| split::default_name(&input));
    if s.sequence && !name.contains("-seq") {
        name.push_str("-seq");
    }
    let plan = Plan {
        input,
        name,
        cut: s.cut,
        dirs: s.dirs.clone(),
        replicas: s.replicas,
        base_urls: s.base_urls.clone(),
    };
    match split::split(&plan) {
        Ok(report) => {
            show!(
                "{} in {} parts, each in {} of {} directories",
                human(report.total),
                report.parts.len(),
                plan.replicas,
                plan.dirs.len()
            );
            for path in &report.manifest_paths {
                show!("wrote {}", path.display());
            }
            exit::OK
        }
        Err(err) => {
            say!("partfetch: {err}");
            match err.kind() {
                partfetch::ErrorKind::Limit => exit::USAGE,
                kind => exit_code(kind),
            }
        }
    }
}

/// Runs `serve` until the process is stopped.
pub fn serve(s: &Serve) -> i32 {
    let mut config = Config::new(&s.dir, s.listen);
    config.rate_limit = s.rate_limit;
    config.delay = s.delay;
    if let Some(n) = s.max_connections {
        config.max_connections = n;
    }
    match Server::start(config) {
        Ok(server) => {
            // Tests and scripts read the port from this first line.
            say!(
                "partfetch: serving {} on http://{}/",
                s.dir.display(),
                server.addr()
            );
            server.wait();
            exit::OK
        }
        Err(err) => {
            say!("partfetch: {err}");
            exit_code(err.kind())
        }
    }
}
