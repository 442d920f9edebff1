//! The `--trace` view: pipeloop's and poller's `log` records on stderr,
//! each with the time since poller started, so that a reader can follow
//! what the loop did and when.

use std::io::Write;
use std::time::Instant;

/// Installs the logger: with `trace`, every record down to `trace`;
/// otherwise what `RUST_LOG` asks for (nothing, unset).
pub fn init(trace: bool) {
    let start = Instant::now();
    let mut builder = env_logger::Builder::new();
    if trace {
        builder.filter_level(log::LevelFilter::Trace);
    } else if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    builder
        .format(move |out, record| {
            let at = start.elapsed();
            writeln!(
                out,
                "[{:>4}.{:06}s {:<5}] {}",
                at.as_secs(),
                at.subsec_micros(),
                record.level(),
                record.args()
            )
        })
        .target(env_logger::Target::Stderr)
        .init();
}
