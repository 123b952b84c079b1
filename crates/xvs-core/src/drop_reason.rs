//! Why the forwarder did not forward a frame. Every dropped frame is counted under one reason.

use xvs_wire::{Layer, WireError};

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident => $label:literal,)*) => {
        /// The reason a frame was not forwarded.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum DropReason { $($(#[$doc])* $name,)* }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];
            /// Number of reasons (size of per-reason counter arrays).
            pub const COUNT: usize = Self::ALL.len();

            /// A stable snake_case name for logs, JSON and metric labels.
            pub const fn label(self) -> &'static str {
                match self { $(DropReason::$name => $label,)* }
            }
        }
    };
}

reasons! {
    /// A header was cut short (Ethernet, VLAN, IP or transport).
    Truncated => "truncated",
    /// A header field was malformed (version, header length, total length, too many extensions).
    Malformed => "malformed",
    /// An IPv4 header checksum was wrong where xvs checks it (packets that create state).
    BadChecksum => "bad_checksum",
    /// An IP fragment addressed to a virtual service (xvs does not reassemble).
    Fragment => "fragment",
    /// A packet for a virtual service that is not a new connection and has no connection entry
    /// (a TCP segment or SCTP chunk of a connection opened elsewhere or before a restart).
    NoConnection => "no_connection",
    /// The scheduler found no available real server.
    NoRealServer => "no_real_server",
    /// The connection table had no room, and nothing could be evicted for this entry.
    TableFull => "table_full",
    /// The next hop's MAC address is not known yet (resolution was requested).
    UnknownNeighbour => "unknown_neighbour",
    /// No route to the destination.
    NoRoute => "no_route",
    /// The packet does not fit the egress MTU and may be fragmented (xvs does not fragment).
    TooBig => "too_big",
    /// TTL or hop limit ran out on a routed (NAT) path.
    TtlExceeded => "ttl_exceeded",
    /// The frame buffer has no headroom for the encapsulation or ICMP header to add.
    NoHeadroom => "no_headroom",
    /// No free local address and port in the FullNAT pool.
    NoLocalPort => "no_local_port",
    /// Another connection already owns this flow's key or its reply key.
    Conflict => "conflict",
    /// The egress port has no address of the family needed (TUN source, ICMP source).
    NoSourceAddress => "no_source_address",
    /// An ICMP message xvs would answer or translate was malformed.
    BadIcmp => "bad_icmp",
    /// A packet that would open a connection from a source no client can have: unspecified,
    /// broadcast, multicast, loopback, reserved, or the virtual address itself.
    Martian => "martian",
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated { .. } => DropReason::Truncated,
            _ if matches!(e.layer(), Layer::Icmpv4 | Layer::Icmpv6) => DropReason::BadIcmp,
            _ => DropReason::Malformed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for r in DropReason::ALL {
            assert!(seen.insert(r.label()), "duplicate label {}", r.label());
            assert!(
                r.label()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            assert_eq!(DropReason::ALL[*r as usize], *r);
        }
    }
}
