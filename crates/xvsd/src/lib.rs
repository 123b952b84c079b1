//! xvsd's command line as a library, for the tools that describe it: the man page and the
//! shell completions (`xvs-docs`).

pub mod cli;
