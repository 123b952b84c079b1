//! The error type of the wire layer.

use core::fmt;

/// The protocol layer an error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Ethernet II header.
    Ethernet,
    /// 802.1Q / 802.1ad VLAN tag.
    Vlan,
    /// ARP for IPv4 over Ethernet.
    Arp,
    /// IPv4 header.
    Ipv4,
    /// IPv6 fixed header.
    Ipv6,
    /// IPv6 extension header.
    Ipv6Ext,
    /// TCP header.
    Tcp,
    /// UDP header.
    Udp,
    /// SCTP common header.
    Sctp,
    /// ICMPv4 header.
    Icmpv4,
    /// ICMPv6 header.
    Icmpv6,
    /// VRRP advertisement.
    Vrrp,
    /// IPVS connection-sync message.
    IpvsSync,
}

impl Layer {
    /// A short lowercase name, for logs and metric labels.
    pub const fn name(self) -> &'static str {
        match self {
            Layer::Ethernet => "ethernet",
            Layer::Vlan => "vlan",
            Layer::Arp => "arp",
            Layer::Ipv4 => "ipv4",
            Layer::Ipv6 => "ipv6",
            Layer::Ipv6Ext => "ipv6-ext",
            Layer::Tcp => "tcp",
            Layer::Udp => "udp",
            Layer::Sctp => "sctp",
            Layer::Icmpv4 => "icmpv4",
            Layer::Icmpv6 => "icmpv6",
            Layer::Vrrp => "vrrp",
            Layer::IpvsSync => "ipvs-sync",
        }
    }
}

/// Why a buffer could not be read as the requested header.
///
/// Each variant carries what the layer required and what the buffer held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The buffer ends before the header (or the length it declares) does.
    Truncated {
        /// Layer being read.
        layer: Layer,
        /// Bytes needed from the start of this layer.
        needed: usize,
        /// Bytes available from the start of this layer.
        got: usize,
    },
    /// The version field is not the one of this layer (IPv4 needs 4, IPv6 needs 6).
    BadVersion {
        /// Layer being read.
        layer: Layer,
        /// Version found in the header.
        found: u8,
    },
    /// A header-length field is below the minimum header size.
    BadHeaderLen {
        /// Layer being read.
        layer: Layer,
        /// Minimum header length in bytes.
        min: usize,
        /// Header length the field declares, in bytes.
        found: usize,
    },
    /// A total-length field is smaller than the header it must contain.
    BadTotalLen {
        /// Layer being read.
        layer: Layer,
        /// Minimum total length in bytes.
        min: usize,
        /// Total length the field declares.
        found: usize,
    },
    /// A field has a value this layer does not support (e.g. ARP for a non-Ethernet link).
    Unsupported {
        /// Layer being read.
        layer: Layer,
        /// Which field.
        field: &'static str,
        /// Value found.
        found: u32,
    },
    /// The IPv6 extension header chain is longer than xvs follows.
    TooManyExtensions {
        /// How many extension headers xvs follows at most.
        max: usize,
    },
}

impl WireError {
    /// The layer this error belongs to.
    pub const fn layer(&self) -> Layer {
        match *self {
            WireError::Truncated { layer, .. }
            | WireError::BadVersion { layer, .. }
            | WireError::BadHeaderLen { layer, .. }
            | WireError::BadTotalLen { layer, .. }
            | WireError::Unsupported { layer, .. } => layer,
            WireError::TooManyExtensions { .. } => Layer::Ipv6Ext,
        }
    }

    pub(crate) const fn truncated(layer: Layer, needed: usize, got: usize) -> Self {
        WireError::Truncated { layer, needed, got }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::Truncated { layer, needed, got } => write!(
                f,
                "{} header truncated: needs {needed} bytes, buffer has {got}",
                layer.name()
            ),
            WireError::BadVersion { layer, found } => {
                write!(f, "{}: wrong version field {found}", layer.name())
            }
            WireError::BadHeaderLen { layer, min, found } => write!(
                f,
                "{}: header length {found} is below the minimum {min}",
                layer.name()
            ),
            WireError::BadTotalLen { layer, min, found } => write!(
                f,
                "{}: total length {found} is below the minimum {min}",
                layer.name()
            ),
            WireError::Unsupported {
                layer,
                field,
                found,
            } => write!(f, "{}: unsupported {field} {found:#x}", layer.name()),
            WireError::TooManyExtensions { max } => {
                write!(f, "ipv6: more than {max} extension headers")
            }
        }
    }
}

impl core::error::Error for WireError {}
