//! What `xvs-gen tx` and `xvs-gen sink` print (one JSON line each) for the harness to read.

use serde::{Deserialize, Serialize};

/// The generator's account of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TxReport {
    /// Frames put on the TX ring in all.
    pub sent: u64,
    /// Frames sent inside the measurement window.
    pub sent_in_window: u64,
    /// Seconds from the first frame to the last.
    pub seconds: f64,
    /// Whether the socket bound in zero-copy mode.
    pub zero_copy: bool,
    /// Background frames (`--background-flows`) sent inside the window.
    pub background_in_window: u64,
}

/// Latency percentiles, nanoseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
    /// (quantile, nanoseconds) pairs for a CDF plot.
    pub cdf: Vec<(f64, u64)>,
}

/// A sink's account of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SinkReport {
    /// Packets counted inside the window.
    pub packets: u64,
    /// Bytes counted inside the window.
    pub bytes: u64,
    /// UDP packets among them (outermost header).
    pub udp: u64,
    /// TCP packets among them (outermost header).
    pub tcp: u64,
    /// Window length, seconds.
    pub seconds: f64,
    /// One-way latency (latency mode only).
    pub latency: Option<Latency>,
}
