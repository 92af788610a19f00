//! `sotto-bench`: the load tool for Sotto (issue 6). It measures the off-the-record relay of
//! the real `sotto` server against a bare WebSocket forwarder (the physical limit on the same
//! machine) and against ejabberd (the peer, over XMPP), driven by the same lean load generator
//! with the same pre-encrypted frames, and the rate and latency of OTR handshakes; stored DM
//! messages (`persisted`: send → commit → acknowledgement → fan-out), idle connections
//! (`connections`: memory per connection), and `sweep`, which steps the offered rate up and plots
//! p99 against throughput ([`plot`]).
//!
//! ```text
//! cargo build --release --bin sotto --bin sotto-bench
//! target/release/sotto-bench otr-relay --pairs 50 --payload 256 --window 16 --json relay.json
//! target/release/sotto-bench otr-relay --pairs 50 --payload 256 --window 16 --with-ejabberd
//! target/release/sotto-bench handshakes --pairs 10 --rate 50 --json handshakes.json
//! target/release/sotto-bench persisted --pairs 50 --window 4 --json persisted.json
//! target/release/sotto-bench connections --connections 10000 --sources 8
//! target/release/sotto-bench sweep --start-rate 500 --svg docs/benchmarks/sweep.svg
//! target/release/sotto-bench forwarder --listen 127.0.0.1:9000   # the forwarder alone
//! ```
//!
//! Every scenario starts its own server from the release binary (`--sotto-bin`, else
//! `target/release/sotto`) with a temporary data directory and raised rate limits, sets it up
//! through the SDK (`sotto-client`) like any client, prints a markdown summary on stdout and
//! writes the full figures as JSON with `--json FILE`. See `docs/benchmarks.md` for how the
//! figures are taken and what limits them.
//!
//! Modules: [`forwarder`] (the bare forwarder), [`load`] (the load generator), [`provision`]
//! (users, DMs, keys, OTR sessions, and the hand-over of a session's connection to a raw
//! socket), [`spawn`] (the measured child processes), [`process`] (CPU and memory from
//! `/proc`), [`report`] (JSON and markdown), [`scenario`] (one module per scenario), and the
//! peer: [`ejabberd`] (install, configure, start, stop) with [`xmpp`] (a minimal XMPP client).

pub mod ejabberd;
pub mod forwarder;
pub mod load;
pub mod plot;
pub mod process;
pub mod provision;
pub mod report;
pub mod scenario;
pub mod spawn;
pub mod xmpp;
