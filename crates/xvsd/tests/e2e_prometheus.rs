//! A real Prometheus (Debian's package) scrapes xvsd in the lab, and its HTTP API answers
//! queries for xvs's series, and for node_exporter's IPVS series after the relabelling
//! docs/operations.md gives (so dashboards and alerts made for kernel IPVS work on xvs).

mod lab;

use lab::{Lab, serial};
use std::time::{Duration, Instant};

const DR: &str = r#"
interfaces: [ext0]
metrics: 127.0.0.1:9469
services:
  - { proto: tcp, vip: 198.18.0.10, port: 7, scheduler: rr, reals: [ { addr: 198.18.0.11, method: dr, weight: 3 }, { addr: 198.18.0.12, method: dr } ] }
"#;

/// The scrape configuration of docs/operations.md: xvs's series as they are, and a copy of
/// the node_exporter-compatible ones under node_exporter's names.
const PROMETHEUS: &str = r#"
global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: xvs
    static_configs: [ { targets: ["127.0.0.1:9469"] } ]
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: "xvs_ipvs_(.*)"
        target_label: __name__
        replacement: "node_ipvs_$1"
"#;

fn query(lab: &Lab, q: &str) -> serde_json::Value {
    let out = lab.run(
        "dir",
        &[
            "curl",
            "-s",
            "--max-time",
            "3",
            "-G",
            "http://127.0.0.1:9090/api/v1/query",
            "--data-urlencode",
            &format!("query={q}"),
        ],
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

#[test]
fn prometheus_scrapes_xvsd_and_answers_for_its_series() {
    let _g = serial();
    lab::need("prometheus", "prometheus", "these tests");
    let lab = Lab::up("one-armed", 1);
    let x = lab.xvsd(DR, &[]);
    let data = lab::payload(5000, 3);
    for _ in 0..4 {
        assert_eq!(lab.tcp_echo("198.18.0.10", 7, &data), data);
    }
    let dir = lab.scratch().join("prom");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let conf = dir.join("prometheus.yml");
    std::fs::write(&conf, PROMETHEUS).unwrap();
    let mut prom = lab.spawn(
        "dir",
        &[
            "prometheus",
            &format!("--config.file={}", conf.display()),
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
            "--web.listen-address=127.0.0.1:9090",
            "--log.level=warn",
        ],
    );
    // Until a scrape has landed and the series answer.
    let t = Instant::now();
    let weights = loop {
        let v = query(&lab, "node_ipvs_backend_weight");
        let r = v["data"]["result"].as_array().cloned().unwrap_or_default();
        if r.len() == 2 {
            break r;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Prometheus has no node_ipvs_backend_weight after 30 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let rs1 = weights
        .iter()
        .find(|r| r["metric"]["remote_address"] == "198.18.0.11")
        .expect("rs1");
    assert_eq!(rs1["metric"]["local_address"], "198.18.0.10");
    assert_eq!(rs1["metric"]["local_port"], "7");
    assert_eq!(rs1["metric"]["proto"], "TCP");
    assert_eq!(rs1["value"][1], "3");
    let conns = query(&lab, "node_ipvs_connections_total");
    assert_eq!(
        conns["data"]["result"][0]["value"][1], "4",
        "four connections: {conns}"
    );
    let own = query(&lab, "xvs_service_connections_total");
    assert_eq!(own["data"]["result"][0]["value"][1], "4", "{own}");
    let up = query(&lab, "up{job=\"xvs\"}");
    assert_eq!(up["data"]["result"][0]["value"][1], "1", "{up}");
    // The Grafana dashboard's queries are valid PromQL, and those about what this director
    // has (services, real servers, workers, the process) find series.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana-xvs.json"),
        )
        .expect("docs/grafana-xvs.json"),
    )
    .expect("the dashboard is JSON");
    // rate() needs two samples in its window.
    let t = Instant::now();
    while query(&lab, "count_over_time(up{job=\"xvs\"}[1m])")["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0)
        < 3
    {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "fewer than 3 scrapes in 20 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut checked = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let q = expr.replace("$instance", ".*").replace("$job", ".*");
            let v = query(&lab, &q);
            assert_eq!(v["status"], "success", "{}: {q}: {v}", panel["title"]);
            let about_ha = q.contains("xvs_vrrp") || q.contains("xvs_sync") || q.contains("> 0");
            let sorry = q.contains("sorry");
            if !about_ha && !sorry {
                assert!(
                    v["data"]["result"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty()),
                    "{}: {q} finds nothing: {v}",
                    panel["title"]
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "{checked} queries");
    let _ = prom.kill();
    let _ = prom.wait();
    drop(x);
}
