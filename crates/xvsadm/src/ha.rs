//! High availability in xvsadm: `xvsadm vrrp` (the instances), ipvsadm's `-L --daemon` and
//! `xvsadm convert-keepalived FILE`.

use xvs_control::proto::{DaemonReply, VrrpReply};

/// The instances as a table.
pub fn vrrp_table(r: &VrrpReply) -> String {
    let mut out = format!(
        "{:<12} {:<8} {:>4} {:<7} {:>9} {:<16} {:>9} {:>9} {:>9} {}\n",
        "Instance",
        "Iface",
        "VRID",
        "State",
        "Prio",
        "Master",
        "Since",
        "AdvIn",
        "AdvOut",
        "Refused"
    );
    for i in &r.instances {
        let refused = if i.rejected.is_empty() {
            "-".to_string()
        } else {
            i.rejected
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        out += &format!(
            "{:<12} {:<8} {:>4} {:<7} {:>9} {:<16} {:>8.0}s {:>9} {:>9} {}\n",
            i.name,
            i.interface,
            i.vrid,
            i.state,
            format!("{}/{}", i.priority, i.base_priority),
            i.master.as_deref().unwrap_or("-"),
            i.since,
            i.adverts_in,
            i.adverts_out,
            refused
        );
    }
    out
}

/// ipvsadm 1.31's `-L --daemon`: one line per daemon, master first.
pub fn daemon_lines(r: &DaemonReply) -> String {
    let mut out = String::new();
    for d in &r.daemons {
        out += &format!(
            "{} sync daemon (mcast={}, syncid={}",
            d.role, d.interface, d.syncid
        );
        if d.maxlen != 0 {
            out += &format!(", maxlen={}", d.maxlen);
        }
        out += &format!(", group={}", d.group);
        if d.port != 0 {
            out += &format!(", port={}", d.port);
        }
        if d.ttl != 0 {
            out += &format!(", ttl={}", d.ttl);
        }
        out += ")\n";
    }
    out
}

/// A keepalived.conf as xvs YAML: the configuration with its defaults left out, and each
/// warning on standard error.
pub fn convert(path: &std::path::Path) -> Result<String, String> {
    let (loaded, warnings) = xvs_control::keepalived::load(path).map_err(|e| e.to_string())?;
    for w in &warnings {
        eprintln!("warning: {}", xvs_control::keepalived::describe(w));
    }
    loaded
        .apply(
            xvs_control::config::DEFAULT_MAX_SERVICES,
            xvs_control::config::DEFAULT_MAX_REALS,
        )
        .map_err(|e| e.to_string())?;
    let v = serde_yaml_ng::to_value(&loaded.config).map_err(|e| e.to_string())?;
    let text = serde_yaml_ng::to_string(&prune(v)).map_err(|e| e.to_string())?;
    Ok(format!(
        "# converted by xvsadm convert-keepalived from {}\n{text}",
        path.display()
    ))
}

/// Drops what says nothing: nulls, empty lists and maps, `false`.
fn prune(v: serde_yaml_ng::Value) -> serde_yaml_ng::Value {
    use serde_yaml_ng::Value;
    match v {
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !empty(v))
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(prune).collect()),
        other => other,
    }
}

fn empty(v: &serde_yaml_ng::Value) -> bool {
    use serde_yaml_ng::Value;
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xvs_control::proto::DaemonStatus;

    #[test]
    fn daemon_lines_as_ipvsadm_prints_them() {
        let r = DaemonReply {
            daemons: vec![DaemonStatus {
                role: "master".into(),
                interface: "eth0".into(),
                syncid: 1,
                maxlen: 1472,
                group: "224.0.0.81".into(),
                port: 8848,
                ttl: 1,
            }],
            ..DaemonReply::default()
        };
        assert_eq!(
            daemon_lines(&r),
            "master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
        );
    }

    #[test]
    fn a_keepalived_conf_converts_to_yaml_that_loads_the_same() {
        let dir = std::env::temp_dir().join(format!("xvsadm-conv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("keepalived.conf");
        std::fs::write(
            &f,
            "virtual_server 192.168.233.100 80 {\n delay_loop 2\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 192.168.233.20 80 {\n  weight 1\n  TCP_CHECK {\n   connect_timeout 3\n  }\n }\n}\nvrrp_instance VI_1 {\n state MASTER\n interface ens33\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  192.168.233.100\n }\n}\n",
        )
        .unwrap();
        let yaml = convert(&f).unwrap();
        let again = xvs_control::config::parse(&yaml, "converted.yaml").unwrap();
        let (orig, _) = xvs_control::keepalived::load(&f).unwrap();
        assert_eq!(again.config, orig.config, "{yaml}");
        assert!(!yaml.contains("null"), "{yaml}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
