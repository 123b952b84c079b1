//! xvsadm's command line as a library: the parser of ipvsadm's options and of `-R` rules,
//! used by the xvsadm binary and by the fuzz target that feeds it arbitrary arguments.

pub mod args;
