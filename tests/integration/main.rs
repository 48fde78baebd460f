//! ferry's integration tests, one binary: the fixtures in `common/` are compiled once, and
//! every test runs side by side with every other (so each keeps to its own temp dirs, ports,
//! processes and environment: see `common`).
//!
//! One module per area; run one with a filter, e.g. `cargo test --test integration sync::`
//! (or `scripts/test --test integration sync::`), one engine's runs with `::native`.

mod common;

mod bundles;
mod catalog;
mod cli;
mod deploy;
mod destinations;
mod faults;
mod fixtures_selftest;
mod hostile;
mod inputs;
mod missing_only;
mod namespaces;
mod native;
mod plan;
mod platforms;
mod progress;
mod quota;
mod rate_limit;
mod rate_limit_proxy_selftest;
mod scale;
mod scripts;
mod serve;
mod shard;
mod signatures;
mod sync;
mod token_auth;
