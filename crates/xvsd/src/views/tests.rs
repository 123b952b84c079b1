//! The views answered from a director over the stand-in kernel, serving one DR service.

use super::health::health;
use super::listing::{conns, list};
use super::stats::stats;
use super::trace::trace;
use crate::director::testing;
use std::net::IpAddr;
use xvs_control::proto::TraceQuery;

#[test]
fn a_service_is_listed_with_its_real_server_and_no_connections_yet() {
    let (d, _) = testing::director_serving();
    let l = list(&d);
    assert_eq!(l.table_size, 1024);
    assert_eq!(l.services.len(), 1);
    let s = &l.services[0];
    assert_eq!(s.service.0.to_string(), "TCP 198.18.0.10:80");
    assert_eq!(s.reals.len(), 1);
    assert_eq!(
        s.reals[0].spec.addr,
        "198.18.1.11".parse::<IpAddr>().unwrap()
    );
    assert_eq!((s.reals[0].active, s.reals[0].inactive), (0, 0));
    assert!(s.reals[0].up);
    let c = conns(&d, 10);
    assert!(c.conns.is_empty() && !c.truncated);
}

#[test]
fn a_real_server_without_a_check_is_unchecked_and_nothing_is_withdrawn() {
    let (d, _) = testing::director_serving();
    let h = health(&d);
    assert!(h.withdrawn.is_empty());
    assert_eq!(h.servers.len(), 1);
    let s = &h.servers[0];
    assert_eq!(
        (s.real.as_str(), s.check.as_str(), s.state.as_str()),
        ("198.18.1.11:80", "-", "unchecked")
    );
    assert_eq!(s.weight, 1);
}

#[test]
fn the_counters_carry_the_table_the_generation_and_each_steering_program() {
    let (d, _) = testing::director_serving();
    let v = stats(&d);
    assert_eq!(v["conn_table"]["capacity"], 1024);
    assert_eq!(v["conn_table"]["entries"], 0);
    assert_eq!(v["generation"], d.running.generation);
    assert_eq!(v["steering"][0]["interface"], "ext0");
    assert_eq!(v["steering"][0]["mode"], "native");
    assert_eq!(v["drops"]["table_full"], 0);
    assert!(
        v["workers"].as_array().unwrap().is_empty(),
        "no worker sockets"
    );
}

fn query(proto: &str, dst: &str) -> TraceQuery {
    TraceQuery {
        proto: proto.into(),
        src: "203.0.113.7".parse().unwrap(),
        sport: 40000,
        dst: dst.parse().unwrap(),
        dport: 80,
        interface: None,
        tcp_flags: None,
    }
}

#[test]
fn a_syn_to_the_service_is_scheduled_to_its_real_server() {
    let (mut d, _) = testing::director_serving();
    let r = trace(&mut d, &query("tcp", "198.18.0.10")).unwrap();
    assert_eq!(r.verdict, "forward");
    assert_eq!(r.service.as_deref(), Some("TCP 198.18.0.10:80"));
    assert_eq!(r.real.as_deref(), Some("198.18.1.11:80"));
    assert!(
        r.reason.starts_with("new connection: scheduler wlc"),
        "{}",
        r.reason
    );
    // No neighbour entry for the real server in the stand-in network.
    assert_eq!(
        r.egress.as_deref(),
        Some("ext0 to 198.18.1.11 (MAC not resolved yet)")
    );
}

#[test]
fn other_addresses_go_to_the_host_and_bad_queries_are_refused() {
    let (mut d, _) = testing::director();
    assert_eq!(
        trace(&mut d, &query("tcp", "198.18.0.99")).unwrap().verdict,
        "host"
    );
    let e = trace(&mut d, &query("icmp", "198.18.0.10")).unwrap_err();
    assert_eq!(e, "unknown protocol 'icmp' (tcp, udp or sctp)");
    let e = trace(&mut d, &query("tcp", "2001:db8::10")).unwrap_err();
    assert!(e.contains("different address families"), "{e}");
}
