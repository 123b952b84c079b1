//! High availability in the lab's ha shape (client, two directors `dir` and `dir2`, DR real
//! servers, one segment): xvsd's VRRP against a stock keepalived (Debian's), xvsd against
//! xvsd with connection sync, tracking, failback and split brain. Real processes; root and
//! keepalived are required (tools/setup.sh installs it): these tests fail, never skip.

mod lab;

use lab::{Lab, Xvsd, payload, serial};
use std::process::{Command, Stdio};
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
    eprintln!(
        "keepalived took over {:.2} s after xvsd stopped cleanly",
        took.as_secs_f64()
    );
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
    eprintln!(
        "keepalived took over {:.2} s after kill -9 of xvsd",
        took.as_secs_f64()
    );
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

/// Polls a short echo through the VIP until one succeeds; returns when.
fn vip_answers(lab: &Lab, limit: Duration) -> Duration {
    let t = Instant::now();
    let data = payload(1000, 77);
    loop {
        if lab.tcp_echo(VIP, 7, &data) == data {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < limit,
            "the VIP did not answer within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SYNC: &str = "sync: { interface: ext0, instance: VI_1, refresh: 5 }\n";

/// Waits up to `limit` until `x` holds `n` established connections to the VIP's port 7 (the
/// streams, synced from the master: the sync lag is the export sweep's second, the sender's
/// second and the install, longer in a debug build on a loaded machine); returns how long.
fn wait_synced(x: &Xvsd, n: usize, limit: Duration) -> Duration {
    let t = Instant::now();
    loop {
        let listing = x.adm_ok(&["-Lnc"]);
        let have = listing
            .lines()
            .filter(|l| l.contains("ESTABLISHED") && l.contains(&format!(" {VIP}:7 ")))
            .count();
        if have >= n {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < limit,
            "{have} of {n} connections synced after {limit:?}:\n{listing}\n{}",
            x.request(r#"{"v":1,"cmd":"daemon"}"#)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_killed_master_s_streams_finish_through_the_backup_with_connection_sync() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let mut master = lab.xvsd(&xvsd_conf(150, SYNC), &[]);
    wait_state(&master, "MASTER", Duration::from_secs(8));
    let backup = lab.xvsd_on("dir2", &xvsd_conf(100, SYNC), &[]);
    wait_state(&backup, "BACKUP", Duration::from_secs(3));
    // 12 streams of 60 chunks (12 s each) over the three real servers (rr).
    let s = lab.streams(VIP, 7, 12, 60);
    std::thread::sleep(Duration::from_secs(2));
    // The backup has every one of them (each sent once it showed data).
    let lag = wait_synced(&backup, 12, Duration::from_secs(8));
    eprintln!(
        "sync: the backup had all 12 streams {:.1} s after they started",
        2.0 + lag.as_secs_f64()
    );
    master.kill_hard();
    let killed = Instant::now();
    wait_state(&backup, "MASTER", Duration::from_secs(6));
    vip_answers(&lab, Duration::from_secs(10));
    let failover = killed.elapsed();
    let (ok, broken) = lab::streams_result(s);
    eprintln!(
        "failover: the VIP answered through the backup {:.2} s after kill -9 of the master; \
         streams whole {ok}, broken {}",
        failover.as_secs_f64(),
        broken.len()
    );
    let st = backup.stats();
    assert_eq!(
        broken,
        Vec::<u64>::new(),
        "backup: drops {} passed {} conns {}\n{}",
        st["drops"],
        st["passed"],
        backup.adm_ok(&["-Lnc"]),
        backup.log_text()
    );
    assert_eq!(ok, 12);
    let d = backup.request(r#"{"v":1,"cmd":"daemon"}"#);
    assert_eq!(d["rejected"], serde_json::json!({}), "{d}");
}

/// A file under the lab's temporary directory.
fn tmp(lab: &Lab, name: &str) -> std::path::PathBuf {
    lab.scratch().join(name)
}

#[test]
fn a_failing_script_or_interface_moves_the_vip_and_notifies_as_keepalived() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let ok = tmp(&lab, "app-ok");
    std::fs::write(&ok, "").unwrap();
    let notes = tmp(&lab, "notify.txt");
    let track = format!(
        "      track_script: [ {{ name: chk_app }} ]
      track_interface: [ {{ name: dum0 }} ]
      notify: \"echo >> {notes} \"
      notify_fault: \"echo FAULT-SCRIPT >> {notes}\"
  scripts:
    - {{ name: chk_app, script: \"test -e {ok}\", interval: 1, weight: -60 }}
",
        notes = notes.display(),
        ok = ok.display()
    );
    assert!(
        lab.sh("dir", "ip link add dum0 type veth peer name dum1 && ip link set dum1 up && ip link set dum0 up")
            .status
            .success()
    );
    let a = lab.xvsd(&xvsd_conf(150, &track), &[]);
    wait_state(&a, "MASTER", Duration::from_secs(8));
    let b = lab.xvsd_on("dir2", &xvsd_conf(100, ""), &[]);
    wait_state(&b, "BACKUP", Duration::from_secs(3));

    // The script fails: A's priority drops to 90, B (100) takes over.
    std::fs::remove_file(&ok).unwrap();
    wait_state(&b, "MASTER", Duration::from_secs(8));
    wait_state(&a, "BACKUP", Duration::from_secs(2));
    let v = a.request(r#"{"v":1,"cmd":"vrrp"}"#);
    assert_eq!(v["instances"][0]["priority"], 90, "{v}");
    lab.wait_addr("dir", VIP, false, Duration::from_secs(2));
    assert!(lab.has_addr("dir2", VIP));
    // It succeeds again: A (150) preempts.
    std::fs::write(&ok, "").unwrap();
    wait_state(&a, "MASTER", Duration::from_secs(8));
    wait_state(&b, "BACKUP", Duration::from_secs(2));

    // The tracked interface goes down: A in FAULT (priority 0 sent), B takes over at once.
    assert!(lab.sh("dir", "ip link set dum0 down").status.success());
    let t = Instant::now();
    wait_state(&a, "FAULT", Duration::from_secs(3));
    wait_state(&b, "MASTER", Duration::from_secs(3));
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert!(lab.sh("dir", "ip link set dum0 up").status.success());
    wait_state(&a, "MASTER", Duration::from_secs(8));

    // keepalived's notify arguments, in order.
    std::thread::sleep(Duration::from_millis(300));
    let said = std::fs::read_to_string(&notes).unwrap();
    let lines: Vec<&str> = said.lines().collect();
    let want = [
        "INSTANCE VI_1 BACKUP 150",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 BACKUP 90",
        "INSTANCE VI_1 MASTER 150",
        "INSTANCE VI_1 FAULT 150",
        "FAULT-SCRIPT",
    ];
    for w in want {
        assert!(lines.contains(&w), "no '{w}' in {lines:?}");
    }
    let pos = |w: &str| lines.iter().position(|l| *l == w).unwrap();
    assert!(
        pos("INSTANCE VI_1 BACKUP 90") < pos("INSTANCE VI_1 FAULT 150"),
        "{lines:?}"
    );
    drop((a, b));
}

#[test]
fn the_old_master_returns_gets_the_table_preempts_and_no_stream_breaks() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let mut a = lab.xvsd(&xvsd_conf(150, SYNC), &[]);
    wait_state(&a, "MASTER", Duration::from_secs(8));
    let b = lab.xvsd_on("dir2", &xvsd_conf(100, SYNC), &[]);
    wait_state(&b, "BACKUP", Duration::from_secs(3));
    // 8 streams of 26 s.
    let s = lab.streams(VIP, 7, 8, 130);
    std::thread::sleep(Duration::from_secs(2));
    wait_synced(&b, 8, Duration::from_secs(8));
    a.kill_hard();
    wait_state(&b, "MASTER", Duration::from_secs(6));
    std::thread::sleep(Duration::from_secs(1));
    // A comes back (its log appended to): backup first, it receives B's table, then preempts.
    let started = Instant::now();
    let a = lab.xvsd(&xvsd_conf(150, SYNC), &[]);
    wait_state(&a, "MASTER", Duration::from_secs(20));
    let preempted = started.elapsed();
    let d = a.request(r#"{"v":1,"cmd":"daemon"}"#);
    assert!(d["conns_installed"].as_u64().unwrap() >= 8, "{d}");
    wait_state(&b, "BACKUP", Duration::from_secs(3));
    let (ok, broken) = lab::streams_result(s);
    eprintln!(
        "failback: A preempted {:.1} s after it started (refresh 5 s); streams whole {ok}, broken {}",
        preempted.as_secs_f64(),
        broken.len()
    );
    assert!(
        preempted >= Duration::from_secs(6),
        "A took mastership back before it had the table: {preempted:?}"
    );
    assert_eq!(broken, Vec::<u64>::new(), "{}", a.log_text());
    assert_eq!(ok, 8);
}

/// Drops VRRP between the directors on the switch (nftables bridge filter), or lets it pass.
fn cut_vrrp(lab: &Lab, cut: bool) {
    let cmd = if cut {
        "nft add table bridge xvscut && nft add chain bridge xvscut fw '{ type filter hook forward priority 0; }' && nft add rule bridge xvscut fw ip protocol 112 drop"
    } else {
        "nft delete table bridge xvscut"
    };
    let out = lab.sh("sw", cmd);
    assert!(
        out.status.success(),
        "nft (apt-get install nftables; tools/setup.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn split_brain_heals_to_one_master_with_gratuitous_arps_and_traffic() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let a = lab.xvsd(&xvsd_conf(150, ""), &[]);
    wait_state(&a, "MASTER", Duration::from_secs(8));
    let b = lab.xvsd_on("dir2", &xvsd_conf(100, ""), &[]);
    wait_state(&b, "BACKUP", Duration::from_secs(3));
    cut_vrrp(&lab, true);
    wait_state(&b, "MASTER", Duration::from_secs(6));
    assert!(
        lab.has_addr("dir", VIP) && lab.has_addr("dir2", VIP),
        "both masters"
    );
    // Heal, watching the client's segment for gratuitous ARPs.
    let cap = Command::new("timeout")
        .args([
            "6",
            "ip",
            "netns",
            "exec",
            &lab.ns("cl"),
            "tcpdump",
            "-l",
            "-nn",
            "-i",
            "eth0",
            "arp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(500));
    cut_vrrp(&lab, false);
    wait_state(&b, "BACKUP", Duration::from_secs(4));
    wait_state(&a, "MASTER", Duration::from_secs(1));
    lab.wait_addr("dir2", VIP, false, Duration::from_secs(2));
    // The capture ends by its own timeout (killing `timeout` would orphan tcpdump).
    let seen = String::from_utf8_lossy(&cap.wait_with_output().unwrap().stdout).to_string();
    let garps = seen
        .lines()
        .filter(|l| l.contains(&format!("who-has {VIP}")) && l.contains(&format!("tell {VIP}")))
        .count();
    assert!(
        garps >= 5,
        "gratuitous ARPs after the heal: {garps}\n{seen}"
    );
    assert!(lab.has_addr("dir", VIP));
    let data = payload(30_000, 9);
    let t = Instant::now();
    while lab.tcp_echo(VIP, 7, &data) != data {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", a.log_text());
    }
}

/// The lab's keepalived.conf: a DR virtual server with TCP_CHECKs, a VRRP instance and the
/// sync daemon following it, and keywords xvs does not implement.
const KEEPALIVED_LAB: &str = "! xvs lab director
global_defs {
   router_id XVS_LAB
   notification_email {
      admin@example.org
   }
   lvs_sync_daemon ext0 inst VI_1
}
virtual_server 198.18.0.10 7 {
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 198.18.0.11 7 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
        }
    }
    real_server 198.18.0.12 7 {
        weight 1
        TCP_CHECK {
            connect_timeout 2
        }
    }
}
vrrp_instance VI_1 {
    state MASTER
    interface ext0
    virtual_router_id 51
    priority 150
    advert_int 1
    smtp_alert
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        198.18.0.10
    }
}
";

#[test]
fn keepalived_conf_runs_unchanged_and_bad_files_are_refused_with_their_place() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let conf = tmp(&lab, "keepalived.conf");
    std::fs::write(&conf, KEEPALIVED_LAB).unwrap();
    let conf_s = conf.display().to_string();
    let x = lab.xvsd("", &["--keepalived-conf", &conf_s]);
    wait_state(&x, "MASTER", Duration::from_secs(8));
    let data = payload(60_000, 3);
    let t = Instant::now();
    while lab.tcp_echo(VIP, 7, &data) != data {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", x.log_text());
    }
    let log = x.log_text();
    for w in [
        format!("{conf_s}:4: 'notification_email' in global_defs is not implemented"),
        format!("{conf_s}:33: 'smtp_alert' in vrrp_instance is not implemented"),
    ] {
        assert!(log.contains(&w), "no warning '{w}':\n{log}");
    }
    let d = x.request(r#"{"v":1,"cmd":"daemon"}"#);
    assert_eq!(
        d["daemons"][0]["role"], "master",
        "the sync daemon follows VI_1: {d}"
    );
    assert_eq!(d["daemons"][0]["syncid"], 51, "the VRID by default: {d}");
    assert_eq!(
        x.adm_ok(&["-L", "--daemon"]),
        "master sync daemon (mcast=ext0, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    let v = x.adm_ok(&["vrrp"]);
    assert!(v.contains("VI_1") && v.contains("MASTER"), "{v}");
    let l = x.adm_ok(&["-Ln"]);
    assert!(l.contains("TCP  198.18.0.10:7 rr"), "{l}");
    // A broken file on reload: refused with its place, nothing changes.
    std::fs::write(&conf, KEEPALIVED_LAB.replace("lb_kind DR", "lb_kind DRX")).unwrap();
    let out = x.adm(&["--reload"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!("{conf_s}:12:")) && e.contains("not NAT, DR or TUN"),
        "{e}"
    );
    assert_eq!(x.adm_ok(&["-Ln"]), l);
    drop(x);
    // A broken file at start: xvsd does not start, and says where.
    let said = lab.xvsd_fails("", &["--keepalived-conf", &conf_s]);
    assert!(said.contains(&format!("{conf_s}:12:")), "{said}");
}

/// The classic guide's keepalived.conf, as written there (its addresses and ens33).
const KEEPALIVED_GUIDE: &str = "virtual_server 192.168.233.100 80 {
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.233.20 80 {
        weight 1
        TCP_CHECK { connect_port 80  connect_timeout 3  nb_get_retry 3  delay_before_retry 3 }
    }
}
vrrp_instance VI_1 {
    state MASTER            # BACKUP on the standby
    interface ens33
    virtual_router_id 51
    priority 100            # lower on the standby
    advert_int 1
    authentication { auth_type PASS  auth_pass 1111 }
    virtual_ipaddress { 192.168.233.100 }
}
";

#[test]
fn the_classic_guide_s_keepalived_conf_runs_unchanged() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    // The guide's interface name, on the director's segment.
    assert!(lab.sh("dir", "ip link set ext0 down && ip link set ext0 name ens33 && ip link set ens33 up && ip addr add 192.168.233.2/24 dev ens33").status.success());
    for n in 1..=2 {
        let rs = format!("rs{n}");
        let ip = format!("192.168.233.{}", 10 * n + 10);
        assert!(
            lab.sh(
                &rs,
                &format!("ip addr add {ip}/24 dev eth0 && ip addr add 192.168.233.100/32 dev lo")
            )
            .status
            .success()
        );
    }
    assert!(
        lab.sh("cl", "ip addr add 192.168.233.99/24 dev eth0")
            .status
            .success()
    );
    let conf = tmp(&lab, "guide.conf");
    std::fs::write(&conf, KEEPALIVED_GUIDE).unwrap();
    let conf_s = conf.display().to_string();
    let x = lab.xvsd("", &["--keepalived-conf", &conf_s]);
    wait_state(&x, "MASTER", Duration::from_secs(8));
    let out = lab.run("cl", &["curl", "-s", "-m", "3", "http://192.168.233.100/"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "rs1",
        "{}",
        x.log_text()
    );
    assert!(
        x.log_text()
            .contains(&format!("{conf_s}:17: 'auth_type' takes one value")),
        "{}",
        x.log_text()
    );
}

/// Two-armed NAT directors: the VIP on the client's side and the real servers' gateway on
/// theirs, two VRRP instances moved together by a sync group.
fn nat_conf(prio: u8) -> String {
    format!(
        "interfaces: [ext0, int0]
services:
  - {{ proto: tcp, vip: {VIP}, port: 7, scheduler: rr, reals: [ {{ addr: 198.18.1.11, method: nat }}, {{ addr: 198.18.1.12, method: nat }}, {{ addr: 198.18.1.13, method: nat }} ] }}
vrrp:
  instances:
    - {{ name: VI_EXT, interface: ext0, vrid: 51, priority: {prio}, virtual_ipaddress: [ {{ addr: {VIP} }} ] }}
    - {{ name: VI_INT, interface: int0, vrid: 52, priority: {prio}, virtual_ipaddress: [ {{ addr: 198.18.1.1 }} ] }}
  sync_groups:
    - {{ name: G, group: [VI_EXT, VI_INT] }}
sync: {{ interface: int0, instance: VI_EXT, refresh: 5 }}
"
    )
}

#[test]
fn nat_streams_survive_the_master_s_death_with_the_gateway_moving_along() {
    let _g = serial();
    let lab = Lab::up("ha-two-armed", 1);
    let mut a = lab.xvsd(&nat_conf(150), &[]);
    wait_state(&a, "MASTER", Duration::from_secs(8));
    let b = lab.xvsd_on("dir2", &nat_conf(100), &[]);
    wait_state(&b, "BACKUP", Duration::from_secs(3));
    lab.wait_addr("dir", "198.18.1.1", true, Duration::from_secs(2));
    let s = lab.streams(VIP, 7, 9, 60);
    std::thread::sleep(Duration::from_secs(2));
    wait_synced(&b, 9, Duration::from_secs(8));
    a.kill_hard();
    let killed = Instant::now();
    lab.wait_addr("dir2", VIP, true, Duration::from_secs(6));
    lab.wait_addr("dir2", "198.18.1.1", true, Duration::from_secs(2));
    let took = killed.elapsed();
    let (ok, broken) = lab::streams_result(s);
    eprintln!(
        "NAT failover: both addresses on the backup {:.2} s after kill -9; streams whole {ok}, broken {}",
        took.as_secs_f64(),
        broken.len()
    );
    assert_eq!(broken, Vec::<u64>::new(), "{}", b.log_text());
    assert_eq!(ok, 9);
}

#[test]
fn ipv6_instances_speak_vrrpv3_and_fail_over() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let conf = |prio: u8| {
        format!(
            "interfaces: [ext0]
services:
  - {{ proto: tcp, vip: '2001:db8::10', port: 7, scheduler: rr, reals: [ {{ addr: '2001:db8::11', method: dr }}, {{ addr: '2001:db8::12', method: dr }} ] }}
vrrp:
  instances:
    - {{ name: VI_6, interface: ext0, vrid: 61, priority: {prio}, advert_int: 0.5, virtual_ipaddress: [ {{ addr: '2001:db8::10', prefix: 128 }} ] }}
"
        )
    };
    let mut a = lab.xvsd(&conf(150), &[]);
    wait_state(&a, "MASTER", Duration::from_secs(8));
    let b = lab.xvsd_on("dir2", &conf(100), &[]);
    wait_state(&b, "BACKUP", Duration::from_secs(3));
    std::thread::sleep(Duration::from_secs(2));
    let v = b.request(r#"{"v":1,"cmd":"vrrp"}"#);
    assert!(
        v["instances"][0]["adverts_in"].as_u64().unwrap() >= 3,
        "{v}"
    );
    assert_eq!(v["instances"][0]["rejected"], serde_json::json!({}), "{v}");
    lab.wait_addr("dir", "2001:db8::10", true, Duration::from_secs(2));
    let data = payload(20_000, 6);
    let t = Instant::now();
    while lab.tcp_echo("2001:db8::10", 7, &data) != data {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", a.log_text());
    }
    // Master down at 0.5 s adverts: 1.5 s + (256 − 100) × 0.5 / 256 s.
    a.kill_hard();
    let t = Instant::now();
    wait_state(&b, "MASTER", Duration::from_secs(4));
    assert!(
        t.elapsed() < Duration::from_millis(3000),
        "{:?}",
        t.elapsed()
    );
    lab.wait_addr("dir2", "2001:db8::10", true, Duration::from_secs(2));
    let t = Instant::now();
    while lab.tcp_echo("2001:db8::10", 7, &data) != data {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", b.log_text());
    }
}

#[test]
fn unicast_vrrpv3_with_keepalived() {
    let _g = serial();
    let lab = Lab::up("ha", 1);
    let k = format!(
        "vrrp_instance VI_1 {{
    state BACKUP
    interface ext0
    virtual_router_id 51
    priority 100
    advert_int 1
    version 3
    unicast_src_ip 198.18.0.3
    unicast_peer {{
        198.18.0.2
    }}
    virtual_ipaddress {{
        {VIP}/32
    }}
}}
"
    );
    let mut k = lab.keepalived("dir2", &k);
    lab.wait_addr("dir2", VIP, true, Duration::from_secs(8));
    let conf = format!(
        "interfaces: [ext0]
services:
  - {{ proto: tcp, vip: {VIP}, port: 7, scheduler: rr, reals: [ {{ addr: 198.18.0.11, method: dr }} ] }}
vrrp:
  instances:
    - {{ name: VI_1, interface: ext0, vrid: 51, priority: 150, version: 3, unicast_src_ip: 198.18.0.2, unicast_peer: [198.18.0.3], virtual_ipaddress: [ {{ addr: {VIP}, prefix: 32 }} ] }}
"
    );
    let mut x = lab.xvsd(&conf, &[]);
    wait_state(&x, "MASTER", Duration::from_secs(8));
    lab.wait_addr("dir2", VIP, false, Duration::from_secs(3));
    std::thread::sleep(Duration::from_secs(2));
    let v = x.request(r#"{"v":1,"cmd":"vrrp"}"#);
    assert_eq!(v["instances"][0]["rejected"], serde_json::json!({}), "{v}");
    assert!(
        k.log_text()
            .contains("Master received advert from 198.18.0.2 with higher priority 150"),
        "keepalived took our unicast v3 advert (its checksum with the real destination):\n{}",
        k.log_text()
    );
    x.kill_hard();
    lab.wait_addr("dir2", VIP, true, Duration::from_secs(6));
    k.stop();
}
