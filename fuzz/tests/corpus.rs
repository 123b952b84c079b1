//! Every committed corpus input through its target, as an ordinary test: what the fuzzers
//! found once stays found.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no corpus for {target}");
    eprintln!("corpus: {target}: {n} inputs replayed");
}

#[test]
fn every_corpus_input_runs_through_its_target() {
    let targets: [(&str, fn(&[u8])); 7] = [
        ("frame", xvs_fuzz::frame),
        ("forwarder", xvs_fuzz::forwarder),
        ("control", xvs_fuzz::control),
        ("config", xvs_fuzz::config),
        ("steer", xvs_fuzz::steer),
        ("xvsadm", xvs_fuzz::xvsadm),
        ("keepalived", xvs_fuzz::keepalived),
    ];
    for (name, f) in targets {
        replay(name, f);
    }
}

/// The steering corpus decides both ways: frames the program must hand to xvs and frames it
/// must leave to the host (so the comparison in `steer` is not vacuous).
#[test]
fn the_steering_corpus_has_frames_for_xvs_and_for_the_host() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/steer");
    let sets = xvs_fuzz::steer::sets();
    let (mut to_xvs, mut to_host) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        match xvs_fuzz::steer::expected(&std::fs::read(entry.unwrap().path()).unwrap(), &sets) {
            Some(true) => to_xvs += 1,
            Some(false) => to_host += 1,
            None => {}
        }
    }
    assert!(
        to_xvs >= 10 && to_host >= 4,
        "{to_xvs} for xvs, {to_host} for the host"
    );
}
