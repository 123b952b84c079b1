//! Compiles the XDP programs (xdp/steer.c, xvsd's steering; xdp/sink.c, the benchmark sink)
//! with clang into OUT_DIR, where the crate embeds them.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    for name in ["steer", "sink"] {
        let src = format!("xdp/{name}.c");
        println!("cargo:rerun-if-changed={src}");
        let status = Command::new(&clang)
            .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
            .arg("-I/usr/include/x86_64-linux-gnu")
            .args(["-c", &src, "-o"])
            .arg(out_dir.join(format!("{name}.o")))
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("{clang} failed to compile {src} ({s})"),
            Err(e) => panic!(
                "cannot run {clang} to compile the XDP program {src}: {e}. \
                 Install clang (apt-get install clang) or set CLANG to its path."
            ),
        }
    }
}
