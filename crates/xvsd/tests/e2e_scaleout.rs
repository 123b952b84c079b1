//! Scale-out, end to end: a router running BIRD with ECMP in front of three directors, each
//! running xvsd and BIRD (BGP with BFD to the router), DR real servers, a client behind the
//! router. Long TCP streams through two VIPs (one `mh`, one `rr` with all-active connection
//! sync) spread over the directors; one director dies (xvsd killed, its BIRD frozen: only BFD
//! can tell); its routes leave the router, its streams move to the others and finish whole; a
//! fourth director joins and takes a share without breaking a stream; a service losing its
//! quorum on one director withdraws that VIP there only.
//!
//! The BIRD and xvsd configurations are the examples under config/, with each director's
//! address and id put in.

mod lab;

use lab::{Lab, Xvsd, serial, streams_result};
use std::time::{Duration, Instant};

const VIP_MH: &str = "198.18.2.10";
const VIP_RR: &str = "198.18.2.11";
const ROUTER: &str = "rt";

fn example(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Director `id` (1..): its address on the segment.
fn addr(id: u8) -> String {
    format!("198.18.0.{}", id + 1)
}

fn node(id: u8) -> String {
    if id == 1 {
        "dir".into()
    } else {
        format!("dir{id}")
    }
}

/// The example director configuration as director `id`; `edit` changes it further. A short
/// sync refresh, so that a joining director has the table after 5 s rather than 12.
fn xvsd_conf(id: u8) -> String {
    let c = example("config/scale-out-director.yaml");
    assert!(c.contains("director_id: 1 }"), "the example changed: {c}");
    c.replace(
        "director_id: 1 }",
        &format!("director_id: {id}, refresh: 3 }}"),
    )
}

fn start_director(lab: &Lab, id: u8, conf: &str) -> (Xvsd, lab::Bird) {
    let x = lab.xvsd_on(&node(id), conf, &[]);
    let b = lab.bird(
        &node(id),
        &example("config/bird/director.conf").replace("198.18.0.2", &addr(id)),
    );
    (x, b)
}

/// The real server a trace on `x` names for a flow from `client` to `vip:7`.
fn traced_real(x: &Xvsd, client: &str, vip: &str) -> String {
    let t = x.adm_ok(&["trace", "tcp", client, &format!("{vip}:7")]);
    t.lines()
        .find(|l| l.trim_start().starts_with("real:"))
        .unwrap_or_else(|| panic!("no real server in the trace:\n{t}"))
        .trim()
        .to_string()
}

fn conns_created(x: &Xvsd) -> u64 {
    x.stats()["conns_created"].as_u64().unwrap_or(0)
}

fn tx_frames(x: &Xvsd) -> u64 {
    x.stats()["tx_frames"].as_u64().unwrap_or(0)
}

#[test]
fn directors_behind_ecmp_lose_no_stream_when_one_dies_and_take_in_a_new_one() {
    let _g = serial();
    let lab = Lab::up("scale-out", 1);
    let rt = lab.bird(ROUTER, &example("config/bird/router.conf"));
    // Director 2 lists its servers in another order, and watches the rr service's servers on
    // :8080 with a quorum of all three.
    let mut dir2_conf = xvsd_conf(2);
    dir2_conf = dir2_conf.replacen(
        "      - { addr: 198.18.0.11, method: dr }\n      - { addr: 198.18.0.12, method: dr }\n      - { addr: 198.18.0.13, method: dr }",
        "      - { addr: 198.18.0.13, method: dr }\n      - { addr: 198.18.0.11, method: dr }\n      - { addr: 198.18.0.12, method: dr }",
        1,
    );
    let check = "check: { type: tcp, port: 8080, interval: 0.5, timeout: 0.5, rise: 1, fall: 1 }";
    let rr_reals = "    scheduler: rr\n    reals:\n      - { addr: 198.18.0.11, method: dr }\n      - { addr: 198.18.0.12, method: dr }\n      - { addr: 198.18.0.13, method: dr }";
    assert!(dir2_conf.contains(rr_reals), "{dir2_conf}");
    dir2_conf = dir2_conf.replace(
        rr_reals,
        &format!(
            "    scheduler: rr\n    quorum: 3\n    reals:\n      - {{ addr: 198.18.0.11, method: dr, {check} }}\n      - {{ addr: 198.18.0.12, method: dr, {check} }}\n      - {{ addr: 198.18.0.13, method: dr, {check} }}"
        ),
    );
    let (mut x1, mut b1) = start_director(&lab, 1, &xvsd_conf(1));
    let (x2, _b2) = start_director(&lab, 2, &dir2_conf);
    let (x3, _b3) = start_director(&lab, 3, &xvsd_conf(3));
    let three = [addr(1), addr(2), addr(3)];
    let three: Vec<&str> = three.iter().map(String::as_str).collect();
    // Announced once each director's sync has listened a refresh period (3 s) and two more.
    for vip in [VIP_MH, VIP_RR] {
        let t = lab.wait_next_hops(ROUTER, vip, &three, Duration::from_secs(30));
        eprintln!(
            "{vip}: ECMP over three directors after {:.1} s",
            t.as_secs_f64()
        );
    }
    // Every director picks the same server for a flow (mh), whatever order its servers came
    // in: the trace says so.
    for port in [40001, 40002, 40003, 40004] {
        let client = format!("198.19.0.100:{port}");
        assert_eq!(
            traced_real(&x1, &client, VIP_MH),
            traced_real(&x2, &client, VIP_MH),
            "{client}"
        );
    }

    // 24 streams on each VIP, 10 s each; the directors share them.
    let mh = lab.streams(VIP_MH, 7, 24, 50);
    let rr = lab.streams(VIP_RR, 7, 24, 50);
    std::thread::sleep(Duration::from_secs(4));
    let shares: Vec<u64> = [&x1, &x2, &x3].iter().map(|x| conns_created(x)).collect();
    eprintln!("connections per director: {shares:?}");
    assert!(shares.iter().all(|&n| n > 0), "ECMP spread: {shares:?}");
    let installed = x2.request(r#"{"v":1,"cmd":"daemon"}"#);
    assert!(
        installed["conns_installed"].as_u64().unwrap_or(0) > 0,
        "director 2 has the others' connections: {installed}"
    );
    // Director 1 dies: its BIRD frozen first (no BGP close, no withdrawal: BFD must notice),
    // then xvsd killed.
    b1.freeze();
    x1.kill_hard();
    let killed = Instant::now();
    let left = [addr(2), addr(3)];
    let left: Vec<&str> = left.iter().map(String::as_str).collect();
    lab.wait_next_hops(ROUTER, VIP_MH, &left, Duration::from_secs(5));
    let withdrawn = killed.elapsed();
    lab.wait_next_hops(ROUTER, VIP_RR, &left, Duration::from_secs(5));
    let (mh_ok, mh_broken) = streams_result(mh);
    let (rr_ok, rr_broken) = streams_result(rr);
    eprintln!(
        "failover: director 1's routes left the router {:.2} s after it died (BFD 3 × 100 ms); \
         mh streams whole {mh_ok}, broken {}; rr streams (all-active sync) whole {rr_ok}, \
         broken {}",
        withdrawn.as_secs_f64(),
        mh_broken.len(),
        rr_broken.len()
    );
    assert!(
        withdrawn < Duration::from_secs(2),
        "routes withdrawn after {withdrawn:?}:\n{}",
        rt.log_text()
    );
    assert!(
        mh_broken.is_empty() && rr_broken.is_empty(),
        "broken mh {mh_broken:?}, rr {rr_broken:?}\ndirector 2:\n{}\ndirector 3:\n{}",
        x2.log_text(),
        x3.log_text()
    );
    let moved: u64 = [&x2, &x3].iter().map(|x| x.drops("no_connection")).sum();
    eprintln!("segments that met no connection on the survivors: {moved}");

    // A fourth director joins while streams run: it announces once synced, takes a share,
    // and no stream breaks.
    let mh = lab.streams(VIP_MH, 7, 16, 60);
    let rr = lab.streams(VIP_RR, 7, 16, 60);
    std::thread::sleep(Duration::from_secs(1));
    let (x4, _b4) = start_director(&lab, 4, &xvsd_conf(4));
    let all = [addr(2), addr(3), addr(4)];
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let joined = lab.wait_next_hops(ROUTER, VIP_MH, &all, Duration::from_secs(20));
    lab.wait_next_hops(ROUTER, VIP_RR, &all, Duration::from_secs(5));
    let (mh_ok, mh_broken) = streams_result(mh);
    let (rr_ok, rr_broken) = streams_result(rr);
    // The streams it took over were in its table already (synced while it waited to announce).
    let moved4 = tx_frames(&x4);
    eprintln!(
        "join: director 4 announced {:.1} s after start; mh whole {mh_ok}, broken {}; rr whole \
         {rr_ok}, broken {}; frames it forwarded for streams that moved to it {moved4}",
        joined.as_secs_f64(),
        mh_broken.len(),
        rr_broken.len()
    );
    assert!(
        mh_broken.is_empty() && rr_broken.is_empty(),
        "broken mh {mh_broken:?}, rr {rr_broken:?}\ndirector 4:\n{}",
        x4.log_text()
    );
    assert!(moved4 > 0, "no running stream moved to director 4");
    // New flows: it takes a share.
    let (ok, broken) = streams_result(lab.streams(VIP_RR, 7, 24, 5));
    let share4 = conns_created(&x4);
    assert!(broken.is_empty() && ok == 24, "{broken:?}");
    assert!(share4 > 0, "director 4 took no new connection");

    // rs3's :8080 stops: director 2's rr service falls below its quorum of 3 and its VIP
    // leaves the route there only; the mh VIP stays on all three.
    lab.stop_http("rs3", 8080);
    let two = [addr(3), addr(4)];
    let two: Vec<&str> = two.iter().map(String::as_str).collect();
    lab.wait_next_hops(ROUTER, VIP_RR, &two, Duration::from_secs(10));
    assert_eq!(lab.next_hops(ROUTER, VIP_MH), all);
    lab.start_http("rs3", 8080);
    lab.wait_next_hops(ROUTER, VIP_RR, &all, Duration::from_secs(10));
    drop(rt);
}
