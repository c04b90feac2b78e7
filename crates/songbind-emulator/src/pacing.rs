//! How fast emulated time passes.

use std::time::Duration;

/// Scales every delay the emulator makes (stage gaps, job durations,
/// long-poll windows). `1.0` is real-time-like, `0.0` is as fast as possible.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pacing {
    scale: f64,
}

impl Pacing {
    /// Delays as a real provider would take them (a song in about a minute,
    /// long-polls of up to 20 s).
    pub const fn realtime() -> Self {
        Self { scale: 1.0 }
    }

    /// No delays at all: for tests. Work still happens in the documented
    /// order; only the waiting is skipped.
    pub const fn instant() -> Self {
        Self { scale: 0.0 }
    }

    /// Every delay multiplied by `scale` (for example `0.01` for a song in
    /// under a second). Negative and non-finite values count as `0.0`.
    pub fn scaled(scale: f64) -> Self {
        Self {
            scale: if scale.is_finite() && scale > 0.0 {
                scale
            } else {
                0.0
            },
        }
    }

    /// The factor applied to every delay.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// `real` scaled by this pacing.
    pub fn scaled_duration(&self, real: Duration) -> Duration {
        real.mul_f64(self.scale)
    }

    /// Waits `real`, scaled; returns at once under [`Pacing::instant`].
    pub async fn sleep(&self, real: Duration) {
        let scaled = self.scaled_duration(real);
        if scaled.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(scaled).await;
        }
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Self::realtime()
    }
}
