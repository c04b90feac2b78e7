//! Peak resident set size of this process, from Linux's `/proc/self`.
//!
//! `VmHWM` in `/proc/self/status` is the peak RSS; writing `5` to
//! `/proc/self/clear_refs` resets it to the current RSS, so the growth of
//! one operation is `VmHWM` after it minus `VmRSS` right after the reset.

use std::io;

/// Resets the peak (`VmHWM`) to the current RSS.
pub fn reset_peak() -> io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

/// The current RSS (`VmRSS`), in KiB.
pub fn current_kib() -> io::Result<u64> {
    status_field("VmRSS")
}

/// The peak RSS since the last [`reset_peak`] (`VmHWM`), in KiB.
pub fn peak_kib() -> io::Result<u64> {
    status_field("VmHWM")
}

fn status_field(name: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            rest.trim().strip_suffix("kB")?.trim().parse().ok()
        })
        .ok_or_else(|| io::Error::other(format!("no {name} in /proc/self/status")))
}

/// Runs `operation` and returns `(baseline, peak)` RSS in KiB: the RSS
/// when the peak was reset just before it, and the peak reached during it.
pub fn peak_during<T>(operation: impl FnOnce() -> T) -> io::Result<(u64, u64, T)> {
    reset_peak()?;
    let baseline = current_kib()?;
    let out = operation();
    let peak = peak_kib()?;
    Ok((baseline, peak, out))
}
