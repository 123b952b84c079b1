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
        let loaded = xvs_control::config::load(&path).map_err(|e| e.to_string())?;
        let applied = loaded
            .apply(DEFAULT_MAX_SERVICES, DEFAULT_MAX_REALS)
            .map_err(|e| e.to_string())?;
        let c = &loaded.config;
        if !c.interfaces.is_empty() && c.interfaces != self.shared.ports.names {
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
        let origin = format!("reload {}", path.display());
        self.config_path = Some(path);
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
