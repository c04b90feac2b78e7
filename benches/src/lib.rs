//! Shared pieces of the songbind benchmarks (see `BENCHMARKS.md`).
//!
//! Every figure the benches report is a ratio against a floor measured in
//! the same run, because the machines they run on are small and shared:
//! absolute times alone mean little. [`timing`] alternates floor and
//! subject runs and takes medians; [`sse_fixture`] builds the Soundverse
//! stream the SSE bench decodes; [`rss`] reads the peak resident set size;
//! [`emulator_process`] runs the emulator in a child process so that its
//! buffers do not count against the client being measured; [`procfs`]
//! reads CPU time, another process's RSS and TCP connections from Linux.

pub mod emulator_process;
pub mod procfs;
pub mod rss;
pub mod sse_fixture;
pub mod timing;
