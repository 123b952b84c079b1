use super::action::*;
use super::*;
use xvs_control::listing::{Columns, Format};
use xvs_control::proto::TraceQuery;

fn act(line: &str) -> Result<Action, String> {
    parse_line(&line.split_whitespace().collect::<Vec<_>>())
}

fn changes(line: &str) -> Vec<String> {
    match act(line) {
        Ok(Action::Apply(c)) => c.iter().map(ToString::to_string).collect(),
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn classic_lvs_lines_parse_to_themselves() {
    // What `-S` prints is what these lines mean.
    for (line, want) in [
        ("-A -t 198.18.0.10:80 -s wrr", "-A -t 198.18.0.10:80 -s wrr"),
        ("-A -t 198.18.0.10:80", "-A -t 198.18.0.10:80 -s wlc"),
        (
            "-a -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 1",
            "-a -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 1",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.0.11 -g -w 1",
            "-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.0.12 -i",
            "-a -t 198.18.0.10:80 -r 198.18.0.12:80 -i -w 1",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.0.12",
            "-a -t 198.18.0.10:80 -r 198.18.0.12:80 -g -w 1",
        ),
        (
            "--add-service --tcp-service 198.18.0.10:443 --scheduler rr --persistent",
            "-A -t 198.18.0.10:443 -s rr -p 300",
        ),
        (
            "-A -t 198.18.0.10:0 -s rr -p 600 -M 255.255.255.0",
            "-A -t 198.18.0.10:0 -s rr -p 600 -M 255.255.255.0",
        ),
        (
            "-A -u 198.18.0.10:53 -s sh -b sh-port,sh-fallback -o",
            "-A -u 198.18.0.10:53 -s sh -o -b sh-fallback,sh-port",
        ),
        ("-A -f 1 -s wlc -p", "-A -f 1 -s wlc -p 300"),
        ("-A -6 -f 2 -s rr", "-A -f 2 -6 -s rr"),
        (
            "-A -t [2001:db8::10]:80 -s rr -p 60 -M 64",
            "-A -t [2001:db8::10]:80 -s rr -p 60 -M 64",
        ),
        (
            "-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 2 -x 100 -y 50",
            "-a -t [2001:db8::10]:80 -r [2001:db8:1::11]:8080 -m -w 2 -x 100 -y 50",
        ),
        (
            "-e -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 0",
            "-e -t 198.18.0.10:80 -r 198.18.1.11:80 -m -w 0",
        ),
        (
            "-d -t 198.18.0.10:80 -r 198.18.1.11:80",
            "-d -t 198.18.0.10:80 -r 198.18.1.11:80",
        ),
        ("-D -u 198.18.0.10:53", "-D -u 198.18.0.10:53"),
        (
            "-A --sctp-service 198.18.0.10:38412 -s mh -b mh-port",
            "-A --sctp-service 198.18.0.10:38412 -s mh -b mh-port",
        ),
        (
            "-A -t 198.18.0.10:80 -s rr --laddr 198.18.1.100,198.18.1.101",
            "-A -t 198.18.0.10:80 -s rr --laddr 198.18.1.100,198.18.1.101",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.1.11:8080 --fullnat -w 3",
            "-a -t 198.18.0.10:80 -r 198.18.1.11:8080 --fullnat -w 3",
        ),
        ("-C", "-C"),
        ("--set 900 120 300", "--set 900 120 300"),
    ] {
        assert_eq!(changes(line), [want], "{line}");
    }
}

#[test]
fn listing_forms() {
    let l = |s: &str| act(s).unwrap();
    assert!(matches!(
        l("-Ln"),
        Action::List {
            format: Format {
                columns: Columns::Default,
                ..
            },
            only: None,
            json: false
        }
    ));
    assert!(matches!(
        l("-L -n --stats --exact"),
        Action::List {
            format: Format {
                columns: Columns::Stats,
                exact: true,
                ..
            },
            ..
        }
    ));
    assert!(matches!(
        l("-Ln --rate"),
        Action::List {
            format: Format {
                columns: Columns::Rate,
                ..
            },
            ..
        }
    ));
    assert!(matches!(
        l("-l --thresholds"),
        Action::List {
            format: Format {
                columns: Columns::Thresholds,
                ..
            },
            ..
        }
    ));
    assert!(matches!(l("-Lnc"), Action::Conns { persistent: false }));
    assert!(matches!(
        l("-lcn --persistent-conn"),
        Action::Conns { persistent: true }
    ));
    assert!(matches!(l("-L --timeout"), Action::Timeouts));
    assert!(matches!(
        l("-Ln -t 198.18.0.10:80"),
        Action::List { only: Some(_), .. }
    ));
    assert!(
        matches!(l(""), Action::List { .. }),
        "no command lists, as ipvsadm"
    );
    assert!(matches!(l("-Z -u 198.18.0.10:53"), Action::Zero(Some(_))));
    assert!(matches!(l("-Sn"), Action::Save));
    assert!(matches!(l("-R"), Action::Restore));
    assert!(matches!(l("--reload"), Action::Reload(None)));
    assert!(matches!(
        l("--reload /etc/xvs/xvs.yaml"),
        Action::Reload(Some(_))
    ));
    assert!(matches!(
        l("trace tcp 198.18.0.100:40000 198.18.0.10:80 --flags ack"),
        Action::Trace(TraceQuery {
            tcp_flags: Some(0x10),
            ..
        })
    ));
    assert!(matches!(l("-v"), Action::Version));
}

#[test]
fn errors_in_ipvsadm_words() {
    for (line, want) in [
        ("-A -a -t 198.18.0.10:80", "multiple commands specified"),
        (
            "-A -s rr",
            "You need to supply the 'service-address' option for the 'add-service' command",
        ),
        (
            "-a -t 198.18.0.10:80",
            "You need to supply the 'real-server' option for the 'add-server' command",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.0.11 -s rr",
            "Illegal 'scheduler' option with the 'add-server' command",
        ),
        (
            "-A -t 198.18.0.10:80 -w 3",
            "Illegal 'weight' option with the 'add-service' command",
        ),
        (
            "-A -t 198.18.0.10:http",
            "illegal virtual server address[:port] specified",
        ),
        (
            "-A -t 198.18.0.10:80 -p 60 -M 33",
            "illegal netmask '33' (a prefix length 0-32 or a dotted mask such as 255.255.255.0)",
        ),
        (
            "-A -t 198.18.0.10:80 -p abc",
            "invalid timeout value `abc' specified",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.0.11 -w 70000",
            "illegal weight specified",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.0.11 -w -1",
            "illegal weight specified",
        ),
        (
            "-A -t 198.18.0.10:80 -o",
            "One-Packet Scheduling is only for UDP virtual services",
        ),
        (
            "-A -t 198.18.0.10:80 -t 198.18.0.10:81",
            "the argument '--tcp-service <SERVICE>' cannot be used multiple times",
        ),
        (
            "-A -t 198.18.0.10:80 -u 198.18.0.10:80",
            "The option '-u' conflicts with the '-t' option in the 'add-service' command",
        ),
        ("--set 1 2", "--set option requires 3 timeout values"),
        (
            "-a -t 198.18.0.10:80 -r 2001:db8::1 -g",
            "Different address family is allowed only for tunneling servers",
        ),
        (
            "-Ln --stats --rate",
            "options conflicts in the list command",
        ),
        ("-Lc --stats", "options conflicts in the list command"),
        ("-A -f 0", "invalid fwmark value `0' specified"),
        (
            "-A -t 198.18.0.10:80 -b sh-sideways",
            "invalid scheduler flag `sh-sideways'",
        ),
        (
            "-A -t 198.18.0.10:80 -p 60 -M 255.0.255.0",
            "255.0.255.0 is not a contiguous netmask",
        ),
    ] {
        assert_eq!(act(line).unwrap_err(), want, "{line}");
    }
}

#[test]
fn restore_reads_save_output_and_names_bad_lines() {
    let text =
        "# saved\n-A -t 198.18.0.10:80 -s wrr\n\n-a -t 198.18.0.10:80 -r 198.18.0.11:80 -g -w 1\n";
    assert_eq!(restore_lines(text).unwrap().len(), 2);
    let e = restore_lines("-A -t 198.18.0.10:80 -s wrr\n-a -t 198.18.0.10:80 -w 1\n").unwrap_err();
    assert_eq!(
        e,
        "line 2: You need to supply the 'real-server' option for the 'add-server' command: -a -t 198.18.0.10:80 -w 1"
    );
    assert!(
        restore_lines("-Ln\n")
            .unwrap_err()
            .starts_with("line 1: only rule commands")
    );
}

#[test]
fn check_command_builds_a_validated_check() {
    match act(
        "check -t 198.18.0.10:80 -r 198.18.1.11 --type HTTP --path /health --status 200,204 --interval 0.5 --fall 3",
    ) {
        Ok(Action::SetCheck {
            service,
            addr,
            port,
            check: Some(c),
        }) => {
            assert_eq!(service.0.to_string(), "TCP 198.18.0.10:80");
            assert_eq!(addr.to_string(), "198.18.1.11");
            assert_eq!(port, None);
            assert_eq!(c.kind, CheckKind::Http);
            assert_eq!(c.status, vec![200, 204]);
            assert_eq!((c.interval, c.fall, c.rise), (0.5, 3, 1));
        }
        other => panic!("{other:?}"),
    }
    match act("check -u 198.18.0.10:53 -r 198.18.1.11:5353 --none") {
        Ok(Action::SetCheck {
            port, check: None, ..
        }) => assert_eq!(port, Some(5353)),
        other => panic!("{other:?}"),
    }
    assert_eq!(act("health"), Ok(Action::Health { json: false }));
    assert_eq!(act("stats --json"), Ok(Action::Stats { json: true }));
}

#[test]
fn bad_checks_are_refused_with_the_option_named() {
    for (line, want) in [
        (
            "check -t 198.18.0.10:80 -r 198.18.1.11 --type tcp --interval -1",
            "--interval: -1 is not a positive",
        ),
        (
            "check -t 198.18.0.10:80 -r 198.18.1.11 --type http",
            "--path: missing",
        ),
        (
            "check -t 198.18.0.10:80 -r 198.18.1.11 --type misc",
            "--command: missing",
        ),
        (
            "check -t 198.18.0.10:80 -r 198.18.1.11 --type ping",
            "unknown checker 'ping'",
        ),
        (
            "check -r 198.18.1.11 --type tcp",
            "You need to supply the 'service-address' option",
        ),
        (
            "check -t 198.18.0.10:80 -r 198.18.1.11 --type tcp --none",
            "cannot be used with",
        ),
        (
            "check -t 198.18.0.10:80 -r 198.18.1.11",
            "required arguments were not provided",
        ),
    ] {
        let e = act(line).unwrap_err();
        assert!(e.contains(want), "{line}: {e}");
    }
}

#[test]
fn ipvsadm_options_xvs_lacks_are_named_not_guessed_at() {
    let e = act("-A -t 198.18.0.10:5060 -s rr -p 300 --pe sip").unwrap_err();
    assert!(e.starts_with("not supported by xvs: --pe"), "{e}");
    assert_eq!(unsupported(&["-L", "-n"]), None);
}

#[test]
fn tunnel_types_as_ipvsadm_takes_and_saves_them() {
    let a = act("-a -t 198.18.0.10:80 -r 198.18.1.11 -i --tun-type gue --tun-port 6080 --tun-csum")
        .unwrap();
    let Action::Apply(changes) = a else {
        panic!("{a:?}")
    };
    assert_eq!(
        changes[0].to_string(),
        "-a -t 198.18.0.10:80 -r 198.18.1.11:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum"
    );
    for (line, want) in [
        (
            "-a -t 198.18.0.10:80 -r 198.18.1.11 -i --tun-type gue",
            "needs its port",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.1.11 -g --tun-type gre",
            "need the tunnel forwarding method",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.1.11 -i --tun-type gre --tun-remcsum",
            "for GUE tunnels only",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.1.11 -i --tun-type vxlan",
            "illegal tunnel type",
        ),
        (
            "-a -t 198.18.0.10:80 -r 198.18.1.11 -i --tun-csum --tun-nocsum",
            "cannot be used with",
        ),
    ] {
        let e = act(line).unwrap_err();
        assert!(e.contains(want), "{line}: {e}");
    }
}
