use super::*;
use crate::change::MethodName;
use crate::check::CheckKind;
use crate::config::ProtoConfig;
use crate::config::ha::{InitialState, SyncRole};

/// The classic guide's keepalived.conf, as it is written there.
const GUIDE: &str = "virtual_server 192.168.233.100 80 {
    delay_loop 2
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 192.168.233.20 80 {
        weight 1
        TCP_CHECK { connect_port 80  connect_timeout 3  nb_get_retry 3  delay_before_retry 3 }
    }
    real_server 192.168.233.30 80 {
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
fn the_guide_s_file_runs_as_keepalived_reads_it() {
    let (l, warnings) = parse(GUIDE, "keepalived.conf").unwrap();
    let c = &l.config;
    assert_eq!(c.interfaces, ["ens33"]);
    let s = &c.services[0];
    assert_eq!(
        (s.proto, s.port, s.scheduler.as_str()),
        (Some(ProtoConfig::Tcp), Some(80), "rr")
    );
    assert_eq!(s.reals.len(), 2);
    let r = &s.reals[0];
    assert_eq!(r.spec.method, MethodName::Dr);
    let chk = r.check.as_ref().unwrap();
    assert_eq!(chk.kind, CheckKind::Tcp);
    assert_eq!(chk.port, Some(80));
    // One keyword per line, as keepalived reads it: connect_timeout, nb_get_retry and
    // delay_before_retry on connect_port's line are ignored (with a warning), so the
    // defaults stand: a 5 s timeout, retry 1 (down after 2 failures), delay_loop 2 s.
    assert_eq!((chk.interval, chk.timeout, chk.fall), (2.0, 5.0, 2));
    let v = &c.vrrp.instances[0];
    assert_eq!(
        (v.vrid, v.priority, v.state),
        (51, Some(100), InitialState::Master)
    );
    // auth_pass shares auth_type's line: keepalived never sees it, so the password is empty.
    assert_eq!(v.authentication.as_ref().unwrap().password, "");
    let said: Vec<String> = warnings.iter().map(describe).collect();
    assert!(
        said.iter()
            .any(|w| w.starts_with("keepalived.conf:8: 'connect_port' takes one value")),
        "{said:#?}"
    );
    assert!(
        said.iter()
            .any(|w| w.starts_with("keepalived.conf:21: 'auth_type' takes one value")),
        "{said:#?}"
    );
    l.apply(64, 256).unwrap();
}

const LAB: &str = "! the lab's director
global_defs {
   router_id LVS_LAB
   lvs_sync_daemon ext0 inst VI_1 id 7
   notification_email { admin@example.org }
}
vrrp_script chk_nginx {
    script \"pidof nginx\"
    interval 2
    weight -20
    fall 2
}
vrrp_instance VI_1
{
    state BACKUP
    interface ext0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        198.18.0.10/32 dev ext0
    }
    track_script {
        chk_nginx weight -30
    }
    unicast_peer {
        198.18.0.3
    }
    notify \"/usr/local/bin/notify.sh\"
    use_vmac
}
virtual_server 198.18.0.10 80 {
    delay_loop 3
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 60
    persistence_granularity 255.255.255.0
    protocol TCP
    sorry_server 198.18.1.99 8080
    real_server 198.18.1.11 8080 {
        weight 3
        notify_down \"/bin/true down\"
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 2
            retry 2
            delay_before_retry 1
        }
    }
    real_server 198.18.1.12 8080 {
        MISC_CHECK {
            misc_path \"/usr/bin/check 198.18.1.12\"
            misc_timeout 4
        }
    }
}
virtual_server fwmark 5 {
    lb_kind DR
    real_server 198.18.0.11 0 {
    }
}
";

#[test]
fn the_lab_s_file_maps_every_block() {
    let (l, warnings) = parse(LAB, "k.conf").unwrap();
    let c = &l.config;
    assert_eq!(c.vrrp.router_id.as_deref(), Some("LVS_LAB"));
    let sync = c.sync.as_ref().unwrap();
    assert_eq!(
        (
            sync.interface.as_str(),
            sync.instance.as_deref(),
            sync.syncid
        ),
        ("ext0", Some("VI_1"), 7)
    );
    let sc = &c.vrrp.scripts[0];
    assert_eq!(
        (
            sc.name.as_str(),
            sc.script.as_str(),
            sc.interval,
            sc.weight,
            sc.fall
        ),
        ("chk_nginx", "pidof nginx", 2.0, -20, 2)
    );
    let v = &c.vrrp.instances[0];
    assert!(v.nopreempt);
    assert_eq!(v.authentication.as_ref().unwrap().password, "s3cret");
    assert_eq!(v.virtual_ipaddress[0].prefix, Some(32));
    assert_eq!(v.virtual_ipaddress[0].dev.as_deref(), Some("ext0"));
    assert_eq!(v.track_script[0].weight, Some(-30));
    assert_eq!(
        v.unicast_peer,
        ["198.18.0.3".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(v.notify.as_deref(), Some("/usr/local/bin/notify.sh"));
    let s = &c.services[0];
    let p = s.persistence.unwrap();
    assert_eq!((p.timeout, p.netmask), (60, Some(24)));
    assert_eq!(s.sorry_server.as_ref().unwrap().spec.port, Some(8080));
    let http = s.reals[0].check.as_ref().unwrap();
    assert_eq!(http.kind, CheckKind::Http);
    assert_eq!(
        (http.interval, http.timeout, http.fall, http.retry_interval),
        (3.0, 2.0, 3, Some(1.0))
    );
    assert_eq!(http.path.as_deref(), Some("/health"));
    assert_eq!(s.reals[0].notify_down.as_deref(), Some("/bin/true down"));
    let misc = s.reals[1].check.as_ref().unwrap();
    assert_eq!(
        (misc.kind, misc.timeout, misc.fall, misc.retry_interval),
        (CheckKind::Misc, 4.0, 1, None)
    );
    assert_eq!(s.reals[1].spec.weight, 1);
    let m = &c.services[1];
    assert_eq!((m.fwmark, m.proto), (Some(5), None));
    // Warned with their places: notification_email, use_vmac, the fwmark service's defaults.
    let said: Vec<String> = warnings.iter().map(describe).collect();
    for want in [
        "k.conf:5: 'notification_email' in global_defs is not implemented",
        "k.conf:35: 'use_vmac' in vrrp_instance is not implemented",
        "k.conf:65: virtual server has no lb_algo",
    ] {
        assert!(
            said.iter().any(|w| w.starts_with(want)),
            "{want}: {said:#?}"
        );
    }
    l.apply(64, 256).unwrap();
}

#[test]
fn malformed_files_are_refused_with_their_place() {
    for (text, line, says) in [
        (
            "vrrp_instance VI_1 {\n  interface ext0\n  virtual_router_id x\n}\n",
            3,
            "not a router id",
        ),
        ("vrrp_instance VI_1 {\n  interface ext0\n", 1, "not closed"),
        (
            "virtual_server 198.18.0.300 80 {\n}\n",
            1,
            "not an IP address",
        ),
        (
            "virtual_server 198.18.0.10 80 {\n lb_kind BOGUS\n}\n",
            2,
            "not NAT, DR or TUN",
        ),
        (
            "global_defs {\n lvs_sync_daemon ext0 inst VI_9\n}\n",
            1,
            "no vrrp_instance named 'VI_9'",
        ),
    ] {
        let e = parse(text, "bad.conf").map(|_| ()).unwrap_err();
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.message.contains(says), "{e}");
        assert_eq!(e.file, "bad.conf");
    }
    // A mistake only the checks see (an unknown scheduler) still names the keepalived line.
    let (l, _) = parse(
        "virtual_server 198.18.0.10 80 {\n protocol TCP\n lb_algo nope\n lb_kind DR\n}\n",
        "k.conf",
    )
    .unwrap();
    let e = l.apply(64, 256).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("k.conf", Some(1)), "{e}");
}

#[test]
fn a_sync_daemon_without_an_instance_runs_both_ways() {
    let (l, _) = parse("global_defs {\n lvs_sync_daemon eth1\n}\n", "k").unwrap();
    let s = l.config.sync.unwrap();
    assert_eq!((s.role, s.syncid), (Some(SyncRole::Both), 0));
}
