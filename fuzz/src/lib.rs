//! What each fuzz target feeds its input to. Each function must return for any input, without
//! a panic, and keep what the code promises: the frame parsers agree with each other, the
//! forwarder gives every frame a verdict and leaves passed and dropped frames untouched, the
//! control protocol, the configuration and xvsadm's command line refuse bad input with an
//! error; the steering program agrees with the forwarder's parser (`steer`).

pub mod steer;

pub use steer::steer;
use xvs_core::Verdict;
use xvs_wire::summary::{IpSummary, summarize, summarize_fast, summarize_into};

/// The frame parsers: the general summary, the summary into a reused struct, the fused fast
/// path; where the fast path accepts a frame, the general one agrees with it.
pub fn frame(data: &[u8]) {
    let general = summarize(data);
    let mut s = IpSummary::EMPTY;
    let into = summarize_into(data, &mut s);
    assert_eq!(
        general.is_ok(),
        into.is_ok(),
        "the two general parsers disagree"
    );
    let mut fast = IpSummary::EMPTY;
    if summarize_fast(data, &mut fast) {
        assert!(
            into.is_ok(),
            "the fast path accepted what the general parser refuses"
        );
        assert_eq!(fast.key, s.key, "the fast path's flow key differs");
    }
}

/// The forwarder over the reference lab: up to 8 frames, each `[port, len_hi, len_lo, bytes…]`,
/// at one second each.
pub fn forwarder(data: &[u8]) {
    let snap = xvs_testkit::lab::snapshot();
    let mut fw = xvs_testkit::lab::forwarder();
    let mut rest = data;
    for second in 1..=8u64 {
        let [port, hi, lo, tail @ ..] = rest else {
            break;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        let (verdict, out) =
            xvs_testkit::lab::run(&mut fw, &snap, u16::from(*port % 3), frame, second);
        if matches!(verdict, Verdict::Pass | Verdict::Drop(_)) {
            assert_eq!(out, frame, "a passed or dropped frame was changed");
        }
    }
}

/// A control-socket request line, and the address and key forms inside requests.
pub fn control(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = serde_json::from_value::<xvs_control::proto::Envelope>(v);
    }
    let _ = text.parse::<xvs_control::change::Key>();
    let _ = xvs_control::change::parse_addr_port(text);
    let _ = xvs_control::change::parse_fwmark(text);
}

/// A configuration file: parsed, and if it parses, checked and applied to a table.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = xvs_control::config::parse(text, "fuzz.yaml") {
        let _ = loaded.apply(64, 256);
    }
}

/// xvsadm's command line: the input split at NUL bytes into arguments (after `xvsadm`), parsed
/// by clap and checked by `Args::action` as xvsadm does; and the whole input as `-R` rules.
/// Either gives a result or an error, never a panic.
pub fn xvsadm(data: &[u8]) {
    use clap::Parser;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let argv = std::iter::once("xvsadm").chain(text.split('\0'));
    if let Ok(a) = xvsadm::args::Args::try_parse_from(argv) {
        let _ = a.action();
    }
    let _ = xvsadm::args::restore_lines(text);
}

/// A keepalived.conf: its syntax, its conversion, and if both pass, the checks of
/// `Loaded::apply`; errors and warnings, never a panic.
pub fn keepalived(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok((loaded, _warnings)) = xvs_control::keepalived::parse(text, "fuzz.conf") {
        let _ = loaded.apply(64, 256);
    }
}
