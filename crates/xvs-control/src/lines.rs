//! Where each field of a YAML document is: a map from field paths
//! (`services[1].reals[0].weight`) to line numbers, so that errors found after parsing (an
//! unknown scheduler, a weight out of range) can name the line as well as the field.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path → 1-based line (and, for a configuration read from several files, the file).
#[derive(Debug, Default, Clone)]
pub struct Lines {
    map: HashMap<String, usize>,
    files: HashMap<String, String>,
}

enum Level {
    Map { path: String, key: Option<String> },
    Seq { path: String, idx: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Level>,
    map: HashMap<String, usize>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Builder {
    /// The path of a value starting now, recording its line for sequence items.
    fn value_path(&mut self, line: usize) -> Option<String> {
        match self.stack.last_mut()? {
            Level::Map { path, key } => key.as_ref().map(|k| join(path, k)),
            Level::Seq { path, idx } => {
                let p = format!("{path}[{idx}]");
                self.map.entry(p.clone()).or_insert(line);
                Some(p)
            }
        }
    }

    /// A value of the current container is complete.
    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Level::Map { key, .. }) => *key = None,
            Some(Level::Seq { idx, .. }) => *idx += 1,
            None => {}
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::MappingStart(..) => {
                let path = self.value_path(line).unwrap_or_default();
                self.stack.push(Level::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path(line).unwrap_or_default();
                self.stack.push(Level::Seq { path, idx: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            Event::Scalar(v, ..) => match self.stack.last_mut() {
                Some(Level::Map {
                    path,
                    key: k @ None,
                }) => {
                    let p = join(path, &v);
                    self.map.entry(p).or_insert(line);
                    *k = Some(v);
                }
                Some(Level::Map { .. }) => self.value_done(),
                Some(Level::Seq { .. }) => {
                    self.value_path(line);
                    self.value_done();
                }
                None => {}
            },
            _ => {}
        }
    }
}

impl Lines {
    /// Maps the fields of `src` (best effort: an unparsable document gives an empty map; the
    /// YAML parser proper reports its error).
    pub fn of(src: &str) -> Lines {
        let mut b = Builder::default();
        let mut p = Parser::new_from_str(src);
        let _ = p.load(&mut b, false);
        Lines {
            map: b.map,
            files: HashMap::new(),
        }
    }

    /// Field paths placed in files other than the one being read (keepalived.conf and its
    /// includes): path → (file, line).
    pub fn of_places(places: impl IntoIterator<Item = (String, (String, usize))>) -> Lines {
        let mut l = Lines::default();
        for (path, (file, line)) in places {
            l.map.insert(path.clone(), line);
            l.files.insert(path, file);
        }
        l
    }

    /// The file of `path` (or its nearest parent), if it is not the one being read.
    pub fn file(&self, path: &str) -> Option<&str> {
        let mut p = path;
        loop {
            if let Some(f) = self.files.get(p) {
                return Some(f);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub fn has(&self, path: &str) -> bool {
        self.map.contains_key(path)
    }

    /// The 1-based line of `path`, or of its nearest parent that has one.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.map.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_to_lines() {
        let src = "interfaces: [eth0]\nservices:\n  - proto: tcp\n    vip: 192.0.2.1\n    reals:\n      - addr: 192.0.2.10\n        weight: 7\n      - addr: 192.0.2.11\n";
        let l = Lines::of(src);
        assert_eq!(l.line("interfaces"), Some(1));
        assert_eq!(l.line("services"), Some(2));
        assert_eq!(l.line("services[0]"), Some(3));
        assert_eq!(l.line("services[0].vip"), Some(4));
        assert_eq!(l.line("services[0].reals[0].weight"), Some(7));
        assert_eq!(l.line("services[0].reals[1]"), Some(8));
        assert_eq!(
            l.line("services[0].reals[1].weight"),
            Some(8),
            "falls back to the item"
        );
        assert_eq!(l.line("nothing"), None);
    }
}
