//! xvsadm as a program: exit statuses and messages without a daemon.

use std::process::Command;

fn xvsadm(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xvsadm"))
        .args(["--socket", "/nonexistent/xvsd.sock"])
        .args(args)
        .output()
        .expect("run xvsadm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_command_line_exits_2_with_ipvsadm_words() {
    let (code, _, err) = xvsadm(&["-A", "-s", "rr"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with(
            "You need to supply the 'service-address' option for the 'add-service' command\n"
        ),
        "{err}"
    );
    assert!(err.contains("Try `xvsadm -h'"), "{err}");
}

#[test]
fn no_daemon_exits_1_and_says_where_it_looked() {
    let (code, out, err) = xvsadm(&["-Ln"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("cannot reach xvsd at /nonexistent/xvsd.sock"),
        "{err}"
    );
    assert!(err.contains("XVS_SOCKET"), "{err}");
}

#[test]
fn version_needs_no_daemon() {
    let (code, out, _) = xvsadm(&["-v"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("xvsadm v"), "{out}");
}

#[test]
fn help_lists_the_ipvsadm_commands() {
    let (code, out, _) = xvsadm(&["-h"]);
    assert_eq!(code, 0);
    for s in [
        "--add-service",
        "--masquerading",
        "--fullnat",
        "--persistent-conn",
        "trace",
        "top",
    ] {
        assert!(out.contains(s), "{s} missing from the help:\n{out}");
    }
}

/// `xvsadm -v` writing to `out`: its exit status and what it said on standard error.
fn version_to(out: impl Into<std::process::Stdio>) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_xvsadm"))
        .arg("-v")
        .stdout(out)
        .output()
        .expect("run xvsadm");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_reader_that_went_away_ends_it_quietly_and_a_full_disk_is_an_error() {
    // A pipe whose reader is already closed (`xvsadm -v | true`, the reader gone first).
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let (code, err) = version_to(writer);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "nothing said: {err}");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let (code, err) = version_to(full);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("cannot write the output:") && !err.contains("panicked"),
        "{err}"
    );
}
