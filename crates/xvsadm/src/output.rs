//! Standard output the way ipvsadm treats it: a reader that went away (`xvsadm -Ln | head`)
//! ends xvsadm quietly with success; any other write error (a full disk) is an error, never a
//! panic.

use std::io::Write;

/// Writes `args` to standard output and flushes it; on a closed pipe the process ends here.
pub fn write(args: std::fmt::Arguments<'_>) -> Result<(), String> {
    let mut o = std::io::stdout().lock();
    match o.write_fmt(args).and_then(|()| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(format!("cannot write the output: {e}")),
    }
}

/// `print!` to standard output, returning its error from the enclosing function.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::output::write(format_args!($($t)*))? };
}

/// `println!` to standard output, returning its error from the enclosing function.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => { $crate::output::write(format_args!("{}\n", format_args!($($t)*)))? };
}
