//! keepalived.conf's syntax, as keepalived reads it: lines of words; `#` and `!` start a
//! comment (outside double quotes); `{` and `}` are words of their own wherever they stand; a
//! keyword opens a block with `{` at the end of its line or alone on the next; `"…"` is one
//! word; `include PATTERN` (a glob, relative to the including file's directory) reads other
//! files in place, at any depth. The result is a tree of [`Node`]s, each knowing its file and
//! line; nothing about what the keywords mean.

use crate::ConfigError;
use std::path::{Path, PathBuf};

/// A warning at a place.
pub type Warning = (At, String);

/// Files an `include` may bring in, in all (a guard against include loops).
const MAX_FILES: usize = 256;
/// Depth of nested includes.
const MAX_DEPTH: usize = 16;

/// Where a word is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// File.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

impl At {
    /// An error at this place.
    pub fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: Some(self.line),
            field: None,
            message: message.into(),
        }
    }
}

/// A keyword with its arguments and, if it opens a block, what is inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The keyword.
    pub keyword: String,
    /// The words after it on its line.
    pub args: Vec<String>,
    /// The block's contents, if it has one.
    pub block: Option<Vec<Node>>,
    /// Where the keyword is.
    pub at: At,
}

/// One line's words.
struct Line {
    words: Vec<String>,
    at: At,
}

/// The words of a line: comments cut, quotes kept together (without the quotes), braces
/// apart.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in text.chars() {
        if quoted {
            if c == '"' {
                quoted = false;
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                in_word = true;
            }
            '#' | '!' => break,
            '{' | '}' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// Reads `path` and what it includes into lines.
struct Reader {
    lines: Vec<Line>,
    files: usize,
    /// Include patterns that matched no file (keepalived goes on, and so does xvs).
    warnings: Vec<Warning>,
}

impl Reader {
    fn read(&mut self, path: &Path, depth: usize, from: Option<&At>) -> Result<(), ConfigError> {
        let name = path.display().to_string();
        let fail = |m: String| match from {
            Some(at) => at.error(m),
            None => ConfigError {
                file: name.clone(),
                line: None,
                field: None,
                message: m,
            },
        };
        self.files += 1;
        if self.files > MAX_FILES || depth > MAX_DEPTH {
            return Err(fail(format!(
                "include: more than {MAX_FILES} files or {MAX_DEPTH} levels (an include loop?)"
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read {name}: {e}")))?;
        for (i, raw) in text.lines().enumerate() {
            let at = At {
                file: name.clone(),
                line: i + 1,
            };
            let w = words(raw);
            if w.first().is_some_and(|k| k == "include") {
                if w.len() != 2 {
                    return Err(at.error("include takes one file name or pattern"));
                }
                let files = expand(path, &w[1], &at)?;
                if files.is_empty() {
                    self.warnings
                        .push((at.clone(), format!("include {}: no file matches", w[1])));
                }
                for p in files {
                    self.read(&p, depth + 1, Some(&at))?;
                }
                continue;
            }
            if !w.is_empty() {
                self.lines.push(Line { words: w, at });
            }
        }
        Ok(())
    }
}

/// The files an include pattern names, in order; relative to the including file's directory.
fn expand(including: &Path, pattern: &str, at: &At) -> Result<Vec<PathBuf>, ConfigError> {
    let base = including.parent().unwrap_or(Path::new("."));
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    let text = full.to_string_lossy();
    let is_glob = pattern.contains(['*', '?', '[']);
    if !is_glob {
        return Ok(vec![full]);
    }
    let paths = glob::glob(&text).map_err(|e| at.error(format!("include {pattern}: {e}")))?;
    let mut out: Vec<PathBuf> = paths
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Reads `path` (and its includes) into a tree of blocks, with warnings about include
/// patterns that matched nothing.
pub fn read(path: &Path) -> Result<(Vec<Node>, Vec<Warning>), ConfigError> {
    let mut r = Reader {
        lines: Vec::new(),
        files: 0,
        warnings: Vec::new(),
    };
    r.read(path, 0, None)?;
    Ok((build(r.lines)?, r.warnings))
}

/// Reads `text` (named `file`; includes relative to the current directory).
pub fn read_text(text: &str, file: &str) -> Result<Vec<Node>, ConfigError> {
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| Line {
            words: words(l),
            at: At {
                file: file.to_string(),
                line: i + 1,
            },
        })
        .filter(|l| !l.words.is_empty())
        .collect::<Vec<_>>();
    if let Some(l) = lines.iter().find(|l| l[0] == "include") {
        return Err(l.at.error("include needs a file to be relative to"));
    }
    build(lines)
}

impl std::ops::Index<usize> for Line {
    type Output = String;
    fn index(&self, i: usize) -> &String {
        &self.words[i]
    }
}

/// Words (with their places) → nodes.
fn build(lines: Vec<Line>) -> Result<Vec<Node>, ConfigError> {
    // Flatten to words, each with its place; a line boundary ends a statement.
    let mut stack: Vec<(Node, Vec<Node>)> = Vec::new();
    let mut top: Vec<Node> = Vec::new();
    // A keyword whose block may open on the next line.
    let mut pending: Option<Node> = None;
    for line in lines {
        let mut words = line.words.into_iter().peekable();
        // `{` alone (or first) on a line opens the block of the statement before.
        if words.peek().is_some_and(|w| w == "{") {
            match pending.take() {
                Some(n) => {
                    words.next();
                    stack.push((n, Vec::new()));
                }
                None => return Err(line.at.error("'{' without a keyword before it")),
            }
        } else if let Some(n) = pending.take() {
            push(&mut stack, &mut top, n);
        }
        let mut stmt: Option<Node> = None;
        for w in words {
            match w.as_str() {
                "{" => {
                    let n = stmt
                        .take()
                        .ok_or_else(|| line.at.error("'{' without a keyword"))?;
                    stack.push((n, Vec::new()));
                }
                "}" => {
                    if let Some(n) = stmt.take() {
                        push(&mut stack, &mut top, n);
                    }
                    let (mut n, children) = stack
                        .pop()
                        .ok_or_else(|| line.at.error("'}' closes no block"))?;
                    n.block = Some(children);
                    push(&mut stack, &mut top, n);
                }
                _ => match &mut stmt {
                    Some(n) => n.args.push(w),
                    None => {
                        stmt = Some(Node {
                            keyword: w,
                            args: Vec::new(),
                            block: None,
                            at: line.at.clone(),
                        });
                    }
                },
            }
        }
        if let Some(n) = stmt {
            pending = Some(n);
        }
    }
    if let Some(n) = pending.take() {
        push(&mut stack, &mut top, n);
    }
    if let Some((n, _)) = stack.last() {
        return Err(n
            .at
            .error(format!("the block of '{}' is not closed", n.keyword)));
    }
    Ok(top)
}

fn push(stack: &mut [(Node, Vec<Node>)], top: &mut Vec<Node>, n: Node) {
    match stack.last_mut() {
        Some((_, children)) => children.push(n),
        None => top.push(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(nodes: &[Node]) -> Vec<&str> {
        nodes.iter().map(|n| n.keyword.as_str()).collect()
    }

    #[test]
    fn words_comments_quotes_and_braces() {
        assert_eq!(words("  a b{c}  # x y"), ["a", "b", "{", "c", "}"]);
        assert_eq!(
            words("script \"pidof nginx # not a comment\" ! c"),
            ["script", "pidof nginx # not a comment"]
        );
        assert_eq!(words("! all comment"), Vec::<String>::new());
    }

    #[test]
    fn blocks_open_on_the_same_or_the_next_line() {
        let t = read_text(
            "global_defs {\n  router_id LVS_1\n}\nvrrp_instance VI_1\n{\n  state MASTER\n  virtual_ipaddress {\n    192.0.2.10/32 dev eth0\n  }\n}\n",
            "k.conf",
        )
        .unwrap();
        assert_eq!(kw(&t), ["global_defs", "vrrp_instance"]);
        let vi = &t[1];
        assert_eq!(vi.args, ["VI_1"]);
        assert_eq!(vi.at.line, 4);
        let b = vi.block.as_ref().unwrap();
        assert_eq!(kw(b), ["state", "virtual_ipaddress"]);
        let vips = b[1].block.as_ref().unwrap();
        assert_eq!(vips[0].keyword, "192.0.2.10/32");
        assert_eq!(vips[0].args, ["dev", "eth0"]);
        assert_eq!(vips[0].at.line, 8);
    }

    #[test]
    fn one_line_blocks_and_unbalanced_braces() {
        let t = read_text("authentication { auth_type PASS auth_pass x }\n", "k").unwrap();
        // keepalived reads a one-line block as words: `auth_type` with the rest as arguments.
        let b = t[0].block.as_ref().unwrap();
        assert_eq!(b[0].keyword, "auth_type");
        let e = read_text("a {\n b\n", "k.conf").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("not closed"), "{e}");
        let e = read_text("a\n}\n", "k.conf").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn includes_are_read_in_place_with_globs() {
        let dir = std::env::temp_dir().join(format!("xvs-kconf-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("conf.d")).unwrap();
        std::fs::write(
            dir.join("main.conf"),
            "global_defs {\n}\ninclude conf.d/*.conf\nlast\n",
        )
        .unwrap();
        std::fs::write(dir.join("conf.d/b.conf"), "b_block {\n x 1\n}\n").unwrap();
        std::fs::write(dir.join("conf.d/a.conf"), "a_block 2\n").unwrap();
        let (t, warnings) = read(&dir.join("main.conf")).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(kw(&t), ["global_defs", "a_block", "b_block", "last"]);
        assert!(t[2].at.file.ends_with("conf.d/b.conf"));
        assert_eq!(t[2].at.line, 1);
        std::fs::write(dir.join("loop.conf"), "include loop.conf\n").unwrap();
        let e = read(&dir.join("loop.conf")).unwrap_err();
        assert!(e.message.contains("include loop"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
