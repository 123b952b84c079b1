//! keepalived.conf as it is: its syntax ([`tree`]) and what xvs makes of it ([`convert`]):
//! the same configuration a YAML file gives (services, real servers and their checks, VRRP,
//! connection sync), so both are checked and applied by the same code. Keywords xvs does not
//! implement are warned about with their file and line, never ignored in silence.

pub mod convert;
pub mod tree;

use crate::{ConfigError, Loaded};
use std::path::Path;
pub use tree::{At, Warning};

fn loaded(c: convert::Converted, file: &str) -> (Loaded, Vec<Warning>) {
    let places = c
        .origins
        .into_iter()
        .map(|(path, at)| (path, (at.file, at.line)));
    (Loaded::from_places(c.config, file, places), c.warnings)
}

/// Reads a keepalived.conf (with its includes) into a configuration, and the warnings about
/// what xvs does not implement. The configuration is not checked yet: `Loaded::apply` does
/// that, as for a YAML file, and its errors name the keepalived file and line.
pub fn load(path: &Path) -> Result<(Loaded, Vec<Warning>), ConfigError> {
    let (nodes, mut warnings) = tree::read(path)?;
    let c = convert::convert(&nodes)?;
    let (l, more) = loaded(c, &path.display().to_string());
    warnings.extend(more);
    Ok((l, warnings))
}

/// [`load`] from text (named `file`; no includes).
pub fn parse(text: &str, file: &str) -> Result<(Loaded, Vec<Warning>), ConfigError> {
    let nodes = tree::read_text(text, file)?;
    Ok(loaded(convert::convert(&nodes)?, file))
}

/// A warning as a log line: `FILE:LINE: message`.
pub fn describe(w: &Warning) -> String {
    format!("{}:{}: {}", w.0.file, w.0.line, w.1)
}

#[cfg(test)]
mod tests;
