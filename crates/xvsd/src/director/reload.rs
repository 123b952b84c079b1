//! Reloading the configuration file: what differs from the running state becomes a batch of
//! changes, installed as any other; unchanged services are not touched.

use super::{Director, Next};
use std::path::Path;
use xvs_control::change;
use xvs_control::config::{DEFAULT_MAX_REALS, DEFAULT_MAX_SERVICES};
use xvs_control::proto::ApplyReply;

impl Director {
    /// Reads the configuration file again (or `path`) and applies what differs from the
    /// running state. A file that does not load changes nothing.
    pub fn reload(&mut self, path: Option<&Path>) -> Result<ApplyReply, String> {
        let Some(path) = path
            .map(Path::to_path_buf)
            .or_else(|| self.config_path.clone())
        else {
            return Err("xvsd was started without --config: give a file to reload".into());
        };
        let (loaded, warnings) =
            xvs_control::config::load_file(&path, self.keepalived).map_err(|e| e.to_string())?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        let applied = loaded
            .apply(DEFAULT_MAX_SERVICES, DEFAULT_MAX_REALS)
            .map_err(|e| e.to_string())?;
        let c = &loaded.config;
        let running = self.running.services.services().count();
        if applied.services.services().count() == 0 && running > 0 && !loaded.says("services") {
            return Err(format!(
                "{} has no `services:`: reloading it would delete all {running} services \
                 (write `services: []` to mean that)",
                path.display()
            ));
        }
        if c.vrrp != self.vrrp_config || c.sync != self.sync_config {
            tracing::warn!(file = %path.display(), "VRRP or sync settings changed in the file: they take effect at the next start");
        }
        if !self.keepalived && !c.interfaces.is_empty() && c.interfaces != self.shared.ports.names {
            tracing::warn!(file = %path.display(), "interfaces changed in the file: they take effect at the next start");
        }
        let running = &self.running;
        let changes = change::diff(
            &running.services,
            &running.timeouts,
            &applied.services,
            &applied.timeouts,
        );
        let (mut table, timeouts) =
            change::apply(&running.services, &running.timeouts, &changes)
                .map_err(|r| format!("{}: {} (in `{}`)", path.display(), r.message, r.change))?;
        let marks_changed = table.mark_rules() != applied.services.mark_rules();
        if marks_changed {
            table.set_mark_rules(applied.services.mark_rules().to_vec());
        }
        let mut sorry_changed = false;
        for (key, _) in &applied.health {
            let want = applied
                .services
                .find(key)
                .and_then(|s| s.sorry)
                .and_then(|r| applied.services.real(r));
            let spec = want.map(|r| (r.addr, Some(r.port), r.options));
            sorry_changed |= table
                .set_sorry(key, spec)
                .map_err(|e| format!("{}: sorry server of {key}: {e}", path.display()))?;
        }
        // Nothing was refused: from here on the file is taken.
        self.health.configure(&applied.health);
        let options_changed = self.running.options.expire_nodest_conn != c.expire_nodest_conn;
        self.running.options.expire_nodest_conn = c.expire_nodest_conn;
        // Whatever it changes, this is the file SIGHUP reads from now on.
        let origin = format!("reload {}", path.display());
        self.config_path = Some(path.clone());
        if changes.is_empty() && !marks_changed && !options_changed && !sorry_changed {
            self.sync_health();
            tracing::info!(file = %path.display(), "configuration reloaded: no service changed");
            return Ok(ApplyReply {
                applied: Vec::new(),
                generation: self.running.generation,
            });
        }
        if marks_changed {
            tracing::info!(file = %path.display(), rules = table.mark_rules().len(), "firewall-mark rules replaced");
        }
        Ok(self.commit(
            Next {
                services: table,
                timeouts,
            },
            &changes,
            &origin,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use std::path::PathBuf;

    /// The file of the stand-in director's service (wlc, one DR real server).
    const SERVING: &str = "services:\n  - proto: tcp\n    vip: 198.18.0.10\n    port: 80\n    reals:\n      - addr: 198.18.1.11\n";

    /// Writes `text` to a file of this test process's own in the temporary directory.
    fn write(name: &str, text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("xvsd-{}-{name}.yaml", std::process::id()));
        std::fs::write(&p, text).expect("temporary file");
        p
    }

    #[test]
    fn a_reload_applies_the_difference_and_a_bad_file_changes_nothing() {
        let (mut d, _) = testing::director();
        let good = write("good", SERVING);
        let bad = write(
            "bad",
            "services:\n  - proto: tcp\n    vip: 198.18.0.10\n    port: 80\n    scheduler: nope\n",
        );
        let first = d.reload(Some(&good));
        let again = d.reload(Some(&good));
        let g = d.running.generation;
        let refused = d.reload(Some(&bad));
        let _ = (std::fs::remove_file(&good), std::fs::remove_file(&bad));
        assert_eq!(
            first.unwrap().applied,
            [
                "-A -t 198.18.0.10:80 -s wlc",
                "-a -t 198.18.0.10:80 -r 198.18.1.11:80 -g -w 1"
            ]
        );
        assert!(again.unwrap().applied.is_empty(), "nothing differs");
        let e = refused.unwrap_err();
        assert!(e.contains("services[0].scheduler"), "{e}");
        assert_eq!(d.running.generation, g);
        assert_eq!(d.running.services.services().count(), 1);
    }

    #[test]
    fn an_empty_file_deletes_nothing_unless_it_says_so() {
        let (mut d, _) = testing::director_serving();
        let empty = write("empty", "");
        let none = write("none", "services: []\n");
        let refused = d.reload(Some(&empty));
        let kept = d.running.services.services().count();
        let emptied = d.reload(Some(&none));
        let _ = (std::fs::remove_file(&empty), std::fs::remove_file(&none));
        let e = refused.unwrap_err();
        assert!(e.contains("would delete all 1 services"), "{e}");
        assert_eq!(kept, 1);
        assert_eq!(emptied.unwrap().applied, ["-D -t 198.18.0.10:80"]);
        assert_eq!(d.running.services.services().count(), 0);
    }

    #[test]
    fn a_file_reloaded_without_a_difference_is_the_one_sighup_reads() {
        let (mut d, _) = testing::director_serving();
        let same = write("same", SERVING);
        let first = d.reload(Some(&same));
        let sighup = d.reload(None);
        let _ = std::fs::remove_file(&same);
        assert!(first.unwrap().applied.is_empty(), "no difference");
        assert!(sighup.is_ok(), "{sighup:?}");
    }

    #[test]
    fn without_a_file_there_is_nothing_to_reload() {
        let (mut d, _) = testing::director();
        assert!(d.reload(None).unwrap_err().contains("without --config"));
    }
}
