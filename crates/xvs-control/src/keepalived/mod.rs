//! keepalived.conf as it is: its syntax ([`tree`]) and what xvs makes of it ([`convert`]):
//! the same configuration a YAML file gives (services, real servers and their checks, VRRP,
//! connection sync), so both are checked and applied by the same code. Keywords xvs does not
//! implement are warned about with their file and line, never ignored in silence.

pub mod tree;
