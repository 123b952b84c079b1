//! xvs-docs: what describes xvs, generated from its code so it cannot drift.
//!
//! ```text
//! xvs-docs man DIR            xvsd.8, xvsadm.8 (from the clap definitions), xvsd.yaml.5
//! xvs-docs completions DIR    bash, zsh and fish completions of xvsd and xvsadm
//! xvs-docs reference          docs/config-reference.md (Markdown, on standard output)
//! xvs-docs schema             docs/xvsd.schema.json (JSON Schema, on standard output)
//! xvs-docs coverage DIR       fails unless every field appears in a YAML file of DIR
//! ```

mod reference;

use clap::CommandFactory;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["man", dir] => man(Path::new(dir)),
        ["completions", dir] => completions(Path::new(dir)),
        ["reference"] => {
            print!("{}", reference::markdown(&reference::fields()));
            Ok(())
        }
        ["schema"] => {
            println!("{}", reference::schema_json());
            Ok(())
        }
        ["coverage", dir] => reference::coverage(Path::new(dir)),
        _ => Err(
            "usage: xvs-docs man DIR | completions DIR | reference | schema | coverage DIR".into(),
        ),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xvs-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The man pages: the two programs' from their command lines, the file format's from the
/// configuration reference.
fn man(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, cmd) in [
        ("xvsd", xvsd::cli::Cli::command()),
        ("xvsadm", xvsadm::args::Args::command()),
    ] {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd)
            .section("8")
            .manual("xvs")
            .render(&mut out)
            .map_err(|e| e.to_string())?;
        write(&dir.join(format!("{name}.8")), &out)?;
    }
    write(
        &dir.join("xvsd.yaml.5"),
        reference::roff(&reference::fields()).as_bytes(),
    )
}

/// Completions of both programs for bash, zsh and fish, under the names each shell's
/// completion directory expects.
fn completions(dir: &Path) -> Result<(), String> {
    use clap_complete::Shell;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, mut cmd) in [
        ("xvsd", xvsd::cli::Cli::command()),
        ("xvsadm", xvsadm::args::Args::command()),
    ] {
        for (shell, file) in [
            (Shell::Bash, name.to_string()),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, name, &mut out);
            write(&dir.join(file), &out)?;
        }
    }
    Ok(())
}
