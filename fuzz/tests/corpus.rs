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
    let targets: [(&str, fn(&[u8])); 4] = [
        ("frame", xvs_fuzz::frame),
        ("forwarder", xvs_fuzz::forwarder),
        ("control", xvs_fuzz::control),
        ("config", xvs_fuzz::config),
    ];
    for (name, f) in targets {
        replay(name, f);
    }
}
