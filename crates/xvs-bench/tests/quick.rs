//! The harness's smoke test: `xvs-bench --quick` runs every contender briefly in namespaces of
//! its own and fails unless traffic flowed through each one that exists on this kernel. It
//! asserts that the harness works, never a speed. Needs root, xvsd built beside xvs-bench
//! (`cargo build --workspace`), and nft/ip/ethtool (tools/setup.sh installs them).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn quick_mode_moves_traffic_through_every_contender() {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_xvs-bench"));
    let dir = bench.parent().expect("target directory");
    let xvsd = dir.join("xvsd");
    assert!(
        xvsd.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        xvsd.display()
    );
    let json = std::env::temp_dir().join(format!("xvs-bench-quick-{}.json", std::process::id()));
    let plots = std::env::temp_dir().join(format!("xvs-bench-plots-{}", std::process::id()));
    let out = Command::new(&bench)
        .arg("--quick")
        .arg("--json")
        .arg(&json)
        .arg("--plots")
        .arg(&plots)
        .output()
        .expect("run xvs-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "xvs-bench --quick failed\n{stderr}\n{stdout}"
    );
    // The table names every contender and the ratios.
    for label in [
        "kernel forwarding",
        "nftables DNAT (numgen)",
        "kernel IPVS DR",
        "xvs forward-only",
        "xvs DR 1 worker",
        "xvs FullNAT 2 workers",
        "xvs DR 1 worker ÷ nftables DNAT",
        "IPv4, receive thread at real-time priority",
        "IPv4, receive thread at normal priority",
        "IPv6, receive thread at real-time priority",
        "flood over capacity: the same SYNs flat out",
        "flood over capacity: the same SYNs at a fixed rate",
        "summary: Mpps delivered",
        "targets (this run)",
    ] {
        assert!(stdout.contains(label), "table lacks {label}:\n{stdout}");
    }
    // Every contender that ran delivered packets and measured latency (the harness checks
    // this too; here it is read back from its JSON).
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON written")).unwrap();
    let contenders = v["contenders"].as_array().expect("contenders");
    assert_eq!(contenders.len(), 13);
    for c in contenders {
        if !c["unavailable"].is_null() {
            // Only kernel IPVS may be missing (kernels without the ip_vs module: the README
            // lists it as optional); say so, and anything else is a failure.
            let id = c["id"].as_str().unwrap_or("?");
            assert!(
                id.starts_with("ipvs-"),
                "{id} did not run: {}",
                c["unavailable"]
            );
            eprintln!("quick: {id} not measured here: {}", c["unavailable"]);
            continue;
        }
        assert!(
            c["median_delivered_pps"].as_f64().unwrap() > 0.0,
            "{} delivered nothing",
            c["id"]
        );
        assert!(
            c["latency"]["latency"]["count"].as_u64().unwrap() > 0,
            "{} has no latency samples",
            c["id"]
        );
    }
    // Every phase (both placements, IPv6) moved traffic through every contender that ran.
    let phases = v["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 3, "IPv4 rt, IPv4 normal, IPv6 rt");
    for p in phases {
        for c in p["contenders"].as_array().expect("contenders") {
            if c["unavailable"].is_null() {
                assert!(
                    c["median_delivered_pps"].as_f64().unwrap() > 0.0,
                    "{} delivered nothing in {}",
                    c["id"],
                    p["name"]
                );
            } else {
                let id = c["id"].as_str().unwrap_or("?");
                assert!(id.starts_with("ipvs-"), "{id} did not run in {}", p["name"]);
            }
        }
    }
    for svg in ["mpps.svg", "latency-cdf.svg", "workers.svg"] {
        let text = std::fs::read_to_string(plots.join(svg)).expect("plot written");
        assert!(text.starts_with("<svg"), "{svg} is not an SVG");
    }
    let _ = std::fs::remove_file(&json);
    let _ = std::fs::remove_dir_all(&plots);
    // Its namespaces are gone.
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left = String::from_utf8_lossy(&ns.stdout);
    assert!(
        !left.lines().any(|l| l.starts_with("xb")),
        "namespaces left behind: {left}"
    );
}
