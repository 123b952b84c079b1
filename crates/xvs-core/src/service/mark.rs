//! Firewall-mark classification rules.

use super::{Family, Protocol, addr16, prefix_match};
use core::net::IpAddr;

/// A classification rule that gives packets a firewall mark (xvs's stand-in for
/// `iptables -t mangle … -j MARK`, since packets reach xvs before netfilter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MarkRule {
    /// Mark to give.
    pub mark: u32,
    /// Match only this protocol (any if `None`).
    pub proto: Option<Protocol>,
    /// Destination network address.
    pub dst: IpAddr,
    /// Destination prefix length.
    pub prefix_len: u8,
    /// Inclusive destination port range.
    pub ports: (u16, u16),
}

impl MarkRule {
    pub(super) fn matches(&self, family: Family, proto: u8, dst: &[u8; 16], dport: u16) -> bool {
        if Family::of(&self.dst) != family {
            return false;
        }
        if let Some(p) = self.proto {
            if p.number() != proto {
                return false;
            }
        }
        if dport < self.ports.0 || dport > self.ports.1 {
            return false;
        }
        let bits = match family {
            Family::V4 => 96 + u32::from(self.prefix_len),
            Family::V6 => u32::from(self.prefix_len),
        };
        prefix_match(&addr16(&self.dst), dst, bits)
    }
}
