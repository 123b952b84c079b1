//! The configuration reference, read off the JSON Schema that the configuration's own types
//! derive (their doc comments, serde defaults and types): every field with its type, default,
//! description, the example file under config/ that uses it, and the version it came in.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

/// The version every field of this format has existed since (no release has changed it yet).
const SINCE: &str = "0.1.0";

/// One field of the file.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its path, e.g. `services[].reals[].check.type`.
    pub path: String,
    /// Its name (last path element).
    pub name: String,
    /// The type whose field it is (the same type may sit at several paths: a real server
    /// and a sorry server).
    pub owner: String,
    /// Its type in words.
    pub ty: String,
    /// Its default, as YAML would write it (empty: none, or required).
    pub default: String,
    /// What it is.
    pub description: String,
}

/// A mapping of the file (the top level, a service, a real server, ...) and its fields.
#[derive(Debug, Clone)]
pub struct Section {
    /// Where it is, e.g. `services[]` (empty: the top level).
    pub path: String,
    /// What it is.
    pub description: String,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// The schema, as JSON.
pub fn schema() -> Value {
    serde_json::to_value(schemars::schema_for!(xvs_control::Config)).expect("schema")
}

/// The schema, pretty-printed, with the file's name as its title.
pub fn schema_json() -> String {
    let mut s = schema();
    if let Some(o) = s.as_object_mut() {
        o.insert("title".into(), "xvsd.yaml".into());
    }
    serde_json::to_string_pretty(&s).expect("json")
}

fn resolve<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/$defs/");
            root.pointer(&format!("/$defs/{name}")).unwrap_or(v)
        }
        None => v,
    }
}

/// `v` without the `null` alternative of an optional field.
fn non_null(v: &Value) -> &Value {
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = v.get(key).and_then(Value::as_array) {
            let real: Vec<&Value> = alts
                .iter()
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .collect();
            if real.len() == 1 {
                return real[0];
            }
        }
    }
    v
}

/// The name of the type `v` refers to (`Config` for the whole file).
fn type_name(v: &Value) -> String {
    non_null(v).get("$ref").and_then(Value::as_str).map_or_else(
        || "Config".into(),
        |r| r.trim_start_matches("#/$defs/").into(),
    )
}

fn is_object(root: &Value, v: &Value) -> bool {
    let v = resolve(root, non_null(v));
    v.get("properties").is_some()
}

fn type_words(root: &Value, v: &Value) -> String {
    let v0 = non_null(v);
    let name = v0
        .get("$ref")
        .and_then(Value::as_str)
        .map(|r| r.trim_start_matches("#/$defs/").to_string());
    let v = resolve(root, v0);
    if v.get("properties").is_some() {
        return "mapping".into();
    }
    let variants: Vec<String> = v
        .get("enum")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .or_else(|| {
            v.get("oneOf").and_then(Value::as_array).map(|alts| {
                alts.iter()
                    .filter_map(|a| {
                        a.get("const")
                            .or_else(|| a.get("enum").and_then(|e| e.get(0)))
                            .and_then(Value::as_str)
                            .map(str::to_string)
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
    if !variants.is_empty() {
        return format!("one of {}", variants.join(", "));
    }
    let types: Vec<&str> = match v.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let t = types.into_iter().find(|t| *t != "null").unwrap_or("");
    let format = v.get("format").and_then(Value::as_str).unwrap_or("");
    match t {
        "array" => {
            let item = v
                .get("items")
                .map_or("value".into(), |i| type_words(root, i));
            format!("list of {item}")
        }
        "integer" => match format {
            "" => "integer".into(),
            f => format!("integer ({f})"),
        },
        "number" => "number".into(),
        "boolean" => "boolean".into(),
        "string" => match format {
            "ip" => "IP address".into(),
            "" => "string".into(),
            f => format!("string ({f})"),
        },
        "object" => "mapping".into(),
        _ => name.unwrap_or_else(|| "value".into()),
    }
}

fn default_words(v: &Value) -> String {
    match v.get("default") {
        // A mapping's defaults are its fields'.
        None | Some(Value::Null | Value::Object(_)) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(d) => d.to_string(),
    }
}

fn description(v: &Value) -> String {
    v.get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every mapping of the file and its fields, the top level first.
pub fn fields() -> Vec<Section> {
    let root = schema();
    let mut out = Vec::new();
    walk(&root, &root, "", "Config", &mut out);
    out
}

fn walk(root: &Value, obj: &Value, path: &str, owner: &str, out: &mut Vec<Section>) {
    let obj = resolve(root, non_null(obj));
    let Some(props) = obj.get("properties").and_then(Value::as_object) else {
        return;
    };
    let mut section = Section {
        path: path.to_string(),
        description: description(obj),
        fields: Vec::new(),
    };
    let mut nested = Vec::new();
    for (name, p) in props {
        let full = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        section.fields.push(Field {
            path: full.clone(),
            name: name.clone(),
            owner: owner.to_string(),
            ty: type_words(root, p),
            default: default_words(p),
            description: description(p),
        });
        let inner = resolve(root, non_null(p));
        if is_object(root, p) {
            nested.push((full, p.clone()));
        } else if let Some(items) = inner.get("items")
            && is_object(root, items)
        {
            nested.push((format!("{full}[]"), items.clone()));
        }
    }
    out.push(section);
    for (p, v) in nested {
        walk(root, &v, &p, &type_name(&v), out);
    }
}

/// The key paths the YAML files of `dir` use (`services[].reals[].addr`).
pub fn used_paths(dir: &Path) -> Result<Vec<(String, BTreeSet<String>)>, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let v: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", f.display()))?;
        let mut paths = BTreeSet::new();
        collect(&v, "", &mut paths);
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((name, paths));
    }
    Ok(out)
}

fn collect(v: &serde_yaml_ng::Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_yaml_ng::Value::Mapping(m) => {
            for (k, v) in m {
                let Some(k) = k.as_str() else { continue };
                let p = if path.is_empty() {
                    k.to_string()
                } else {
                    format!("{path}.{k}")
                };
                out.insert(p.clone());
                collect(v, &p, out);
            }
        }
        serde_yaml_ng::Value::Sequence(s) => {
            for v in s {
                collect(v, &format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

/// Fails unless every field of every type is used by some YAML file of `dir` (the examples a
/// test loads), at one of the places the type sits.
pub fn coverage(dir: &Path) -> Result<(), String> {
    let used = used_paths(dir)?;
    let all: Vec<Field> = fields().into_iter().flat_map(|s| s.fields).collect();
    let covered: BTreeSet<(&str, &str)> = all
        .iter()
        .filter(|f| used.iter().any(|(_, p)| p.contains(&f.path)))
        .map(|f| (f.owner.as_str(), f.name.as_str()))
        .collect();
    let mut missing: Vec<String> = all
        .iter()
        .filter(|f| !covered.contains(&(f.owner.as_str(), f.name.as_str())))
        .map(|f| format!("{}.{}", f.owner, f.name))
        .collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fields no file of {} uses: {}",
            dir.display(),
            missing.join(", ")
        ))
    }
}

fn example_for(used: &[(String, BTreeSet<String>)], path: &str) -> String {
    used.iter()
        .find(|(_, p)| p.contains(path))
        .map(|(f, _)| format!("config/{f}"))
        .unwrap_or_default()
}

fn examples() -> Vec<(String, BTreeSet<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    used_paths(&dir).unwrap_or_default()
}

fn title(path: &str) -> String {
    if path.is_empty() {
        "The top level".into()
    } else {
        format!("`{path}`")
    }
}

/// The reference in Markdown.
pub fn markdown(sections: &[Section]) -> String {
    let used = examples();
    let mut s = String::from(
        "# xvsd.yaml reference\n\n\
         Generated by `cargo run -p xvs-docs -- reference` from the configuration's own types \
         (do not edit: a test compares this file with what the code says). Every field, its \
         type, its default, what it is, an example file under `config/` that uses it (a test \
         loads each of them), and the version it came in. Durations are in seconds unless the \
         name says otherwise (`_us`: microseconds). The same schema for editors: \
         `docs/xvsd.schema.json`.\n",
    );
    for sec in sections {
        s.push_str(&format!("\n## {}\n\n", title(&sec.path)));
        if !sec.description.is_empty() {
            s.push_str(&format!("{}\n\n", sec.description));
        }
        s.push_str("| field | type | default | description | example | since |\n");
        s.push_str("|---|---|---|---|---|---|\n");
        for f in &sec.fields {
            s.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {SINCE} |\n",
                f.name,
                f.ty.replace('|', "\\|"),
                if f.default.is_empty() {
                    String::new()
                } else {
                    format!("`{}`", f.default)
                },
                f.description.replace('|', "\\|"),
                example_for(&used, &f.path),
            ));
        }
    }
    s
}

fn roff_text(t: &str) -> String {
    t.replace('\\', "\\\\")
        .replace('-', "\\-")
        .replace('`', "")
        .lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The reference as the man page xvsd.yaml(5).
pub fn roff(sections: &[Section]) -> String {
    let mut s = format!(
        ".TH XVSD.YAML 5 \"\" \"xvs {}\" \"File formats\"\n\
         .SH NAME\nxvsd.yaml \\- configuration file of xvsd\n\
         .SH SYNOPSIS\n/etc/xvs/xvsd.yaml\n\
         .SH DESCRIPTION\n\
         The YAML file xvsd reads at start (\\fB\\-\\-config\\fR; /etc/xvs/xvsd.yaml when run \
         without arguments) and again on SIGHUP or \\fBxvsadm \\-\\-reload\\fR, which apply \
         the difference. \\fBxvsd \\-\\-check\\-config FILE\\fR validates a file as the daemon \
         would. Durations are in seconds unless the name says otherwise.\n",
        env!("CARGO_PKG_VERSION")
    );
    for sec in sections {
        s.push_str(&format!(
            ".SS {}\n",
            roff_text(if sec.path.is_empty() {
                "Top level"
            } else {
                &sec.path
            })
        ));
        if !sec.description.is_empty() {
            s.push_str(&format!("{}\n", roff_text(&sec.description)));
        }
        for f in &sec.fields {
            let default = if f.default.is_empty() {
                String::new()
            } else {
                format!(", default {}", f.default)
            };
            s.push_str(&format!(
                ".TP\n.B {}\n({}{})\n{}\n",
                roff_text(&f.name),
                roff_text(&f.ty),
                roff_text(&default),
                roff_text(&f.description)
            ));
        }
    }
    s.push_str(".SH SEE ALSO\n.BR xvsd (8),\n.BR xvsadm (8)\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p)
    }

    #[test]
    fn the_reference_and_the_schema_in_docs_are_what_the_code_says() {
        let md = std::fs::read_to_string(repo("docs/config-reference.md")).unwrap_or_default();
        assert!(
            md == markdown(&fields()),
            "docs/config-reference.md is stale: cargo run -p xvs-docs -- reference > docs/config-reference.md"
        );
        let js = std::fs::read_to_string(repo("docs/xvsd.schema.json")).unwrap_or_default();
        assert!(
            js.trim_end() == schema_json(),
            "docs/xvsd.schema.json is stale: cargo run -p xvs-docs -- schema > docs/xvsd.schema.json"
        );
    }

    #[test]
    fn every_field_is_in_an_example_file_a_test_loads() {
        coverage(&repo("config")).unwrap();
    }

    #[test]
    fn the_reference_knows_the_nested_mappings() {
        let s = fields();
        let paths: Vec<&str> = s.iter().map(|s| s.path.as_str()).collect();
        for p in [
            "",
            "services[]",
            "services[].reals[]",
            "services[].reals[].check",
            "vrrp",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        let top = &s[0];
        let socket = top.fields.iter().find(|f| f.name == "interfaces").unwrap();
        assert_eq!(socket.ty, "list of string");
    }
}
