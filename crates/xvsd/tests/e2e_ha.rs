//! High availability in the lab's ha shape (client, two directors `dir` and `dir2`, DR real
//! servers, one segment): xvsd's VRRP against a stock keepalived (Debian's), xvsd against
//! xvsd with connection sync, tracking, failback and split brain. Real processes; root and
//! keepalived are required (tools/setup.sh installs it): these tests fail, never skip.

mod lab;

use lab::{Lab, Xvsd, payload, serial};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const VIP: &str = "198.18.0.10";

/// xvsd's configuration: DR service on the VIP, VRRP instance VI_1 (VRID 51, PASS "1111")
/// at `prio`, and `extra` lines appended to the instance.
fn xvsd_conf(prio: u8, extra: &str) -> String {
    format!(
        "interfaces: [ext0]
services:
  - {{ proto: tcp, vip: {VIP}, port: 7, scheduler: rr, reals: [ {{ addr: 198.18.0.11, method: dr }}, {{ addr: 198.18.0.12, method: dr }}, {{ addr: 198.18.0.13, method: dr }} ] }}
  - {{ proto: tcp, vip: {VIP}, port: 80, scheduler: rr, reals: [ {{ addr: 198.18.0.11, method: dr }}, {{ addr: 198.18.0.12, method: dr }} ] }}
vrrp:
  instances:
    - name: VI_1
      interface: ext0
      vrid: 51
      priority: {prio}
      advert_int: 1
      authentication: {{ type: PASS, password: '1111' }}
      virtual_ipaddress: [ {{ addr: {VIP}, prefix: 32 }} ]
{extra}"
    )
}

/// keepalived's configuration of the same instance at `prio`.
fn keepalived_conf(prio: u8) -> String {
    format!(
        "vrrp_instance VI_1 {{
    state BACKUP
    interface ext0
    virtual_router_id 51
    priority {prio}
    advert_int 1
    authentication {{
        auth_type PASS
        auth_pass 1111
    }}
    virtual_ipaddress {{
        {VIP}/32
    }}
}}
"
    )
}

/// Waits until `x` says instance VI_1 is in `state`.
fn wait_state(x: &Xvsd, state: &str, limit: Duration) {
    let t = Instant::now();
    loop {
        let v = x.request(r#"{"v":1,"cmd":"vrrp"}"#);
        if v["instances"][0]["state"] == state {
            return;
        }
        assert!(
            t.elapsed() < limit,
            "VI_1 not {state} within {limit:?}: {v}\n{}",
            x.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn xvsd_and_keepalived_elect_one_master_and_take_over_from_each_other() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    // keepalived first, alone: it becomes master.
    let mut k = lab.keepalived("dir2", &keepalived_conf(100));
    lab.wait_addr("dir2", VIP, true, Duration::from_secs(8));
    // xvsd at 150 preempts it; keepalived stays backup.
    let mut x = lab.xvsd(&xvsd_conf(150, ""), &[]);
    wait_state(&x, "MASTER", Duration::from_secs(8));
    lab.wait_addr("dir2", VIP, false, Duration::from_secs(3));
    assert!(lab.has_addr("dir", VIP));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!lab.has_addr("dir2", VIP), "keepalived stayed backup");
    assert!(
        k.log_text()
            .contains("Master received advert from 198.18.0.2 with higher priority 150"),
        "{}",
        k.log_text()
    );
    let data = payload(100_000, 1);
    assert!(lab.tcp_echo(VIP, 7, &data) == data, "{}", x.log_text());

    // A clean stop: priority 0, keepalived takes over after its skew (0.61 s) only.
    assert!(x.stop().success());
    let took = lab.wait_addr("dir2", VIP, true, Duration::from_secs(3));
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(
        !lab.has_addr("dir", VIP),
        "the stopped director let its address go"
    );

    // Started again at 150: it preempts.
    let mut x = lab.xvsd(&xvsd_conf(150, ""), &[]);
    wait_state(&x, "MASTER", Duration::from_secs(8));
    lab.wait_addr("dir2", VIP, false, Duration::from_secs(3));

    // kill -9: keepalived takes over within its master-down time (3 × 1 s + 0.61 s).
    x.kill_hard();
    let t = Instant::now();
    lab.wait_addr("dir2", VIP, true, Duration::from_secs(6));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_millis(5000),
        "took {took:?} (master down is 3.61 s)"
    );
    drop(x);
    k.stop();
}

#[test]
fn the_roles_reversed_keepalived_master_xvsd_backup() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let mut k = lab.keepalived("dir2", &keepalived_conf(150));
    lab.wait_addr("dir2", VIP, true, Duration::from_secs(8));
    let x = lab.xvsd(&xvsd_conf(100, ""), &[]);
    wait_state(&x, "BACKUP", Duration::from_secs(3));
    std::thread::sleep(Duration::from_secs(5));
    assert!(!lab.has_addr("dir", VIP), "a backup holds nothing");
    let v = x.request(r#"{"v":1,"cmd":"vrrp"}"#);
    assert_eq!(v["instances"][0]["state"], "BACKUP", "{v}");
    assert_eq!(v["instances"][0]["master"], "198.18.0.3", "{v}");
    assert!(
        v["instances"][0]["adverts_in"].as_u64().unwrap() >= 4,
        "{v}"
    );
    // keepalived dies: xvsd takes over within the master-down time (3 s + 0.61 s) and
    // serves the VIP.
    k.kill_hard();
    let t = Instant::now();
    wait_state(&x, "MASTER", Duration::from_secs(6));
    let took = t.elapsed();
    assert!(took < Duration::from_millis(5000), "took {took:?}");
    lab.wait_addr("dir", VIP, true, Duration::from_secs(2));
    // The client's ARP entry follows the gratuitous ARPs: the VIP answers through xvsd.
    let data = payload(50_000, 2);
    let t = Instant::now();
    loop {
        if lab.tcp_echo(VIP, 7, &data) == data {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "{}", x.log_text());
    }
    // keepalived back at 150 preempts: xvsd goes back to backup and lets the address go.
    let mut k = lab.keepalived("dir2", &keepalived_conf(150));
    wait_state(&x, "BACKUP", Duration::from_secs(8));
    lab.wait_addr("dir", VIP, false, Duration::from_secs(2));
    k.stop();
}
