//! Compiles the XDP programs with clang into OUT_DIR, where the crate embeds them: xdp/steer.c
//! (xvsd's steering) always, xdp/sink.c (the benchmark sink) with the `bench` feature.
//!
//! The kernel's UAPI headers include `<asm/types.h>`, which Debian keeps in the target's
//! multiarch directory (`/usr/include/x86_64-linux-gnu`, `/usr/include/aarch64-linux-gnu`, …);
//! `-target bpf` does not search it, so it is found here and passed with `-I`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first word a command prints, if it runs and succeeds.
fn output_of(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}

/// The multiarch include directory holding `asm/types.h` for the target being built.
fn multiarch_include() -> Option<PathBuf> {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let from_arch = match arch.as_str() {
        "x86_64" => Some("x86_64-linux-gnu".to_string()),
        "aarch64" => Some("aarch64-linux-gnu".to_string()),
        "arm" => Some("arm-linux-gnueabihf".to_string()),
        "riscv64" => Some("riscv64-linux-gnu".to_string()),
        "powerpc64" => Some("powerpc64le-linux-gnu".to_string()),
        "s390x" => Some("s390x-linux-gnu".to_string()),
        _ => None,
    };
    let candidates = [
        output_of("dpkg-architecture", &["-qDEB_HOST_MULTIARCH"]),
        from_arch,
        output_of("gcc", &["-print-multiarch"]),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|m| Path::new("/usr/include").join(m))
        .find(|d| d.join("asm/types.h").exists())
}

fn main() {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let include = multiarch_include();
    let has_plain_asm = Path::new("/usr/include/asm/types.h").exists();
    if include.is_none() && !has_plain_asm {
        panic!(
            "no asm/types.h for the BPF build: install the kernel's UAPI headers \
             (apt-get install linux-libc-dev, and gcc-multilib or libc6-dev on non-Debian layouts)"
        );
    }
    let mut programs = vec!["steer"];
    if std::env::var_os("CARGO_FEATURE_BENCH").is_some() {
        programs.push("sink");
    }
    for name in programs {
        let src = format!("xdp/{name}.c");
        println!("cargo:rerun-if-changed={src}");
        let mut cmd = Command::new(&clang);
        cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"]);
        if let Some(dir) = &include {
            cmd.arg("-I").arg(dir);
        }
        let status = cmd
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
