//! A better word for YAML's indentation mistakes. A key indented deeper than the key above it,
//! whose value is already on its line, is read by YAML as more of that value (`vip:
//! 198.18.0.10 port: 80`, then "invalid IP address syntax"); a key dedented to a column no
//! enclosing mapping uses gives "did not find expected key". When a file fails to parse, the
//! first such line is named instead of what the parser made of it. Files that parse are never
//! second-guessed.

/// One line's key, as far as indentation goes.
struct KeyLine<'a> {
    line: usize,
    col: usize,
    key: &'a str,
    /// The value follows on the same line (not a block scalar, not an open flow collection).
    inline_value: bool,
}

/// The key of `rest` (text after the indentation and any `- `), if it starts with one.
fn key_of(rest: &str) -> Option<(&str, &str)> {
    let colon = rest.find(':')?;
    let key = &rest[..colon];
    let after = &rest[colon + 1..];
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (plain && (after.is_empty() || after.starts_with(' '))).then_some((key, after.trim()))
}

fn parse_line(n: usize, raw: &str) -> Option<KeyLine<'_>> {
    let trimmed = raw.trim_start_matches(' ');
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    let mut col = raw.len() - trimmed.len();
    let mut rest = trimmed;
    while let Some(r) = rest.strip_prefix("- ") {
        let r2 = r.trim_start_matches(' ');
        col += 2 + (r.len() - r2.len());
        rest = r2;
    }
    let (key, value) = key_of(rest)?;
    // A comment is no value (`check:   # the default check` opens a block like `check:`).
    let value = if value.starts_with('#') {
        ""
    } else {
        value.split(" #").next().unwrap_or("").trim()
    };
    let opens = value.is_empty()
        || value.starts_with('|')
        || value.starts_with('>')
        || (value.starts_with('[') && !value.ends_with(']'))
        || (value.starts_with('{') && !value.ends_with('}'))
        || value.starts_with('&');
    Some(KeyLine {
        line: n,
        col,
        key,
        inline_value: !opens,
    })
}

/// The first line whose indentation is the likely mistake, and what to say about it.
pub fn hint(text: &str) -> Option<(usize, String)> {
    // Key columns of the mappings enclosing the current line, outermost first.
    let mut levels: Vec<usize> = Vec::new();
    let mut prev: Option<KeyLine<'_>> = None;
    // Lines deeper than this column belong to a block scalar or an open flow collection.
    let mut skip_deeper: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        if let Some(c) = skip_deeper {
            if raw.trim().is_empty() || indent > c {
                continue;
            }
            skip_deeper = None;
        }
        let Some(k) = parse_line(i + 1, raw) else {
            continue;
        };
        if let Some(p) = &prev {
            if k.col > p.col && p.inline_value {
                return Some((
                    k.line,
                    format!(
                        "`{}:` is indented deeper than `{}:` on line {}, whose value is already \
                         on its line (an indentation error: YAML reads it as part of that value)",
                        k.key, p.key, p.line
                    ),
                ));
            }
        }
        while levels.last().is_some_and(|&c| c > k.col) {
            levels.pop();
        }
        match levels.last() {
            Some(&c) if c == k.col => {}
            Some(_) if prev.as_ref().is_some_and(|p| k.col < p.col) => {
                return Some((
                    k.line,
                    format!(
                        "`{}:` starts in column {}, where no mapping above it has its keys \
                         (an indentation error: line it up with the keys it belongs with)",
                        k.key,
                        k.col + 1
                    ),
                ));
            }
            _ => levels.push(k.col),
        }
        if !k.inline_value {
            let value_opens_block = raw.contains(": |") || raw.contains(": >");
            let open_flow = raw.trim_end().ends_with('[') || raw.trim_end().ends_with('{');
            if value_opens_block || open_flow {
                skip_deeper = Some(k.col);
            }
        }
        prev = Some(k);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::hint;

    #[test]
    fn a_comment_after_a_key_opens_its_block_like_nothing() {
        let text = "check:    # every server's\n  type: misc\n  command: x\n";
        assert_eq!(hint(text), None);
    }

    #[test]
    fn a_key_under_a_key_with_a_value_is_named() {
        let text = "services:\n  - proto: tcp\n    vip: 198.18.0.10\n      port: 80\n";
        let (line, msg) = hint(text).unwrap();
        assert_eq!(line, 4);
        assert!(
            msg.contains("`port:` is indented deeper than `vip:` on line 3"),
            "{msg}"
        );
    }

    #[test]
    fn a_key_dedented_to_no_level_is_named() {
        let text =
            "services:\n  - proto: tcp\n    reals:\n    - addr: 198.18.0.11\n     method: dr\n";
        let (line, msg) = hint(text).unwrap();
        assert_eq!(line, 5);
        assert!(msg.contains("`method:` starts in column 6"), "{msg}");
    }

    #[test]
    fn well_indented_files_get_no_hint() {
        for text in [
            "interfaces: [ext0]\nservices:\n  - proto: tcp\n    vip: 198.18.0.10\n    port: 80\n    reals:\n      - { addr: 198.18.0.11 }\n      - addr: 198.18.0.12\n        weight: 2\nhealth:\n  x: 1\n",
            "a:\n  b: |\n    text: with colon\n      deeper: still text\n  c: 1\n",
            "a: [\n    x, y ]\nb: 2\n",
            "# comment:\n  nested: comment\nk: v # trailing: comment\n",
        ] {
            assert_eq!(hint(text), None, "{text}");
        }
    }
}
