//! Time as the core sees it: a monotonic count of milliseconds passed in by the caller.

/// A point in monotonic time, in milliseconds since an arbitrary origin chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(pub u64);

impl Time {
    /// A time from whole seconds.
    pub const fn from_secs(s: u64) -> Time {
        Time(s * 1000)
    }

    /// A time from milliseconds.
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms)
    }

    /// Milliseconds since the origin.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the origin, saturated to `u32` (the unit of connection expiry).
    pub const fn secs(self) -> u32 {
        let s = self.0 / 1000;
        if s > u32::MAX as u64 {
            u32::MAX
        } else {
            s as u32
        }
    }
}
