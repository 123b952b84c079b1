//! Protocol state machines and timeouts, as IPVS keeps them.
//!
//! TCP uses the kernel's `tcp_states` table: INPUT (client → server) and OUTPUT (server →
//! client) for NAT/FullNAT, where both halves are seen, and INPUT-ONLY for DR/TUN, where only
//! the client's half crosses the director. SCTP is tracked coarsely by chunk type. UDP has one
//! state. Timeouts default to IPVS's (`tcp 900 tcpfin 120 udp 300`) and can be set.

use xvs_wire::ip_proto;
use xvs_wire::sctp::chunk;
use xvs_wire::tcp::flags;

/// TCP states, in the kernel's order.
pub mod tcp {
    /// No state yet.
    pub const NONE: u8 = 0;
    /// Established.
    pub const ESTABLISHED: u8 = 1;
    /// SYN sent (by the server side).
    pub const SYN_SENT: u8 = 2;
    /// SYN received from the client.
    pub const SYN_RECV: u8 = 3;
    /// FIN seen.
    pub const FIN_WAIT: u8 = 4;
    /// Both FINs seen.
    pub const TIME_WAIT: u8 = 5;
    /// Reset or closed.
    pub const CLOSE: u8 = 6;
    /// Close wait.
    pub const CLOSE_WAIT: u8 = 7;
    /// Last ACK.
    pub const LAST_ACK: u8 = 8;
    /// Listen.
    pub const LISTEN: u8 = 9;
    /// SYN-ACK seen.
    pub const SYNACK: u8 = 10;
    /// Number of states.
    pub const COUNT: usize = 11;
    /// Names as ipvsadm prints them.
    pub const NAMES: [&str; COUNT] = [
        "NONE",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "SYNACK",
    ];
}

/// SCTP states (coarse: xvs tracks the association by chunk type).
pub mod sctp {
    /// No state yet.
    pub const NONE: u8 = 0;
    /// INIT / cookie exchange.
    pub const INIT: u8 = 1;
    /// Data flowing.
    pub const ESTABLISHED: u8 = 2;
    /// Shutdown in progress.
    pub const SHUTDOWN: u8 = 3;
    /// Aborted or shut down.
    pub const CLOSED: u8 = 4;
    /// Number of states.
    pub const COUNT: usize = 5;
    /// Names for listings.
    pub const NAMES: [&str; COUNT] = ["NONE", "INIT", "ESTABLISHED", "SHUTDOWN", "CLOSED"];
}

/// UDP states: a flow is "new" until its second packet.
pub mod udp {
    /// One packet seen.
    pub const NEW: u8 = 0;
    /// More than one packet seen.
    pub const SEEN: u8 = 1;
}

/// Which half of a connection a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Direction {
    /// Client → real server, where the server's replies are also seen (NAT, FullNAT).
    Input = 0,
    /// Real server → client (NAT, FullNAT replies).
    Output = 1,
    /// Client → real server where replies bypass xvs (DR, TUN).
    InputOnly = 2,
}

use tcp::{
    CLOSE as CL, CLOSE_WAIT as CW, ESTABLISHED as ES, FIN_WAIT as FW, LAST_ACK as LA, LISTEN as LI,
    SYN_RECV as SR, SYN_SENT as SS, TIME_WAIT as TW,
};

/// The kernel's `tcp_states` table: [direction][syn, fin, ack, rst][state].
const TCP_TABLE: [[[u8; tcp::COUNT]; 4]; 3] = [
    // INPUT
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// Table row for the flag byte's low five bits: RST over SYN over FIN over ACK; 4 = no row.
const ROW: [u8; 32] = {
    let mut r = [4u8; 32];
    let mut i = 0;
    while i < 32 {
        let f = i as u8;
        r[i] = if f & flags::RST != 0 {
            3
        } else if f & flags::SYN != 0 {
            0
        } else if f & flags::FIN != 0 {
            1
        } else if f & flags::ACK != 0 {
            2
        } else {
            4
        };
        i += 1;
    }
    r
};

/// The next TCP state after a segment with `tcp_flags` in direction `dir`
/// (the kernel's `set_tcp_state`: RST over SYN over FIN over ACK; no flag → CLOSE).
#[inline(always)]
pub fn tcp_next(dir: Direction, state: u8, tcp_flags: u8) -> u8 {
    let row = ROW[usize::from(tcp_flags & 0x1f)];
    if row == 4 {
        return tcp::CLOSE;
    }
    TCP_TABLE[dir as usize][usize::from(row)][usize::from(state).min(tcp::COUNT - 1)]
}

/// The next SCTP state after a packet whose first chunk is `first_chunk`.
#[inline]
pub fn sctp_next(state: u8, first_chunk: Option<u8>) -> u8 {
    match first_chunk {
        Some(chunk::INIT | chunk::INIT_ACK) => sctp::INIT,
        Some(chunk::COOKIE_ECHO | chunk::COOKIE_ACK) => sctp::ESTABLISHED,
        Some(chunk::DATA) if state == sctp::INIT || state == sctp::ESTABLISHED => sctp::ESTABLISHED,
        Some(chunk::SHUTDOWN | chunk::SHUTDOWN_ACK) => sctp::SHUTDOWN,
        Some(chunk::ABORT | chunk::SHUTDOWN_COMPLETE) => sctp::CLOSED,
        _ if state == sctp::NONE => sctp::INIT,
        _ => state,
    }
}

/// Per-state timeouts in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP, indexed by state.
    pub tcp: [u32; tcp::COUNT],
    /// SCTP, indexed by state.
    pub sctp: [u32; sctp::COUNT],
    /// UDP.
    pub udp: u32,
    /// Other protocols (ICMP-only flows are not tracked; kept for completeness of `--set`).
    pub other: u32,
}

impl Default for Timeouts {
    /// IPVS's defaults.
    fn default() -> Self {
        Timeouts {
            tcp: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            sctp: [2, 15, 900, 30, 10],
            udp: 300,
            other: 60,
        }
    }
}

impl Timeouts {
    /// The timeout of `state` for `proto`.
    #[inline]
    pub fn of(&self, proto: u8, state: u8) -> u32 {
        match proto {
            ip_proto::TCP => self.tcp[usize::from(state).min(tcp::COUNT - 1)],
            ip_proto::SCTP => self.sctp[usize::from(state).min(sctp::COUNT - 1)],
            ip_proto::UDP => self.udp,
            _ => self.other,
        }
    }

    /// ipvsadm's `--set TCP TCPFIN UDP` (zero leaves a value unchanged, as ipvsadm does).
    pub fn set_ipvsadm(&mut self, tcp_est: u32, tcp_fin: u32, udp: u32) {
        if tcp_est != 0 {
            self.tcp[usize::from(tcp::ESTABLISHED)] = tcp_est;
        }
        if tcp_fin != 0 {
            self.tcp[usize::from(tcp::FIN_WAIT)] = tcp_fin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }

    /// ipvsadm's `-L --timeout` triple: (tcp, tcpfin, udp).
    pub fn ipvsadm_triple(&self) -> (u32, u32, u32) {
        (
            self.tcp[usize::from(tcp::ESTABLISHED)],
            self.tcp[usize::from(tcp::FIN_WAIT)],
            self.udp,
        )
    }
}

/// True if a connection in `state` counts as active (ipvsadm's ActiveConn): TCP ESTABLISHED,
/// SCTP ESTABLISHED. UDP connections are always inactive, as in IPVS.
#[inline]
pub fn is_active(proto: u8, state: u8) -> bool {
    match proto {
        ip_proto::TCP => state == tcp::ESTABLISHED,
        ip_proto::SCTP => state == sctp::ESTABLISHED,
        _ => false,
    }
}

/// True if a connection in `state` is past its handshake: such entries are kept in preference
/// to embryonic ones when the table is full.
#[inline]
pub fn is_established_class(proto: u8, state: u8) -> bool {
    match proto {
        ip_proto::TCP => matches!(state, ES | FW | TW | CW | LA),
        ip_proto::SCTP => matches!(state, sctp::ESTABLISHED | sctp::SHUTDOWN),
        ip_proto::UDP => state == udp::SEEN,
        _ => false,
    }
}

/// The name of a state for listings (`ipvsadm -Lnc`).
pub fn state_name(proto: u8, state: u8) -> &'static str {
    match proto {
        ip_proto::TCP => tcp::NAMES[usize::from(state).min(tcp::COUNT - 1)],
        ip_proto::SCTP => sctp::NAMES[usize::from(state).min(sctp::COUNT - 1)],
        ip_proto::UDP => "UDP",
        _ => "NONE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flags::{ACK, FIN, RST, SYN};

    fn walk(dir: Direction, steps: &[u8]) -> Vec<&'static str> {
        let mut s = tcp::NONE;
        steps
            .iter()
            .map(|f| {
                s = tcp_next(dir, s, *f);
                tcp::NAMES[usize::from(s)]
            })
            .collect()
    }

    #[test]
    fn dr_half_connection_lifecycle() {
        // Client's half only: SYN, ACK, data ACKs, FIN, ACK.
        assert_eq!(
            walk(
                Direction::InputOnly,
                &[SYN, ACK, ACK | 0x08, FIN | ACK, ACK]
            ),
            [
                "SYN_RECV",
                "ESTABLISHED",
                "ESTABLISHED",
                "FIN_WAIT",
                "FIN_WAIT"
            ]
        );
        assert_eq!(
            walk(Direction::InputOnly, &[SYN, RST]),
            ["SYN_RECV", "SYN_RECV"]
        );
        assert_eq!(
            walk(Direction::InputOnly, &[SYN, ACK, RST]),
            ["SYN_RECV", "ESTABLISHED", "CLOSE"]
        );
    }

    #[test]
    fn nat_full_tracking() {
        let mut s = tcp::NONE;
        s = tcp_next(Direction::Input, s, SYN);
        assert_eq!(s, tcp::SYN_RECV);
        s = tcp_next(Direction::Output, s, SYN | ACK);
        assert_eq!(s, tcp::SYN_RECV);
        s = tcp_next(Direction::Input, s, ACK);
        assert_eq!(s, tcp::ESTABLISHED);
        s = tcp_next(Direction::Output, s, FIN | ACK);
        assert_eq!(s, tcp::FIN_WAIT, "server closes first");
        s = tcp_next(Direction::Input, s, FIN | ACK);
        assert_eq!(s, tcp::TIME_WAIT);
        assert_eq!(
            tcp_next(Direction::Input, tcp::ESTABLISHED, 0),
            tcp::CLOSE,
            "no flags"
        );
        assert_eq!(
            tcp_next(Direction::Input, tcp::NONE, ACK),
            tcp::CLOSE,
            "stray ACK"
        );
    }

    #[test]
    fn timeouts_defaults_and_set() {
        let mut t = Timeouts::default();
        assert_eq!(t.ipvsadm_triple(), (900, 120, 300));
        assert_eq!(t.of(ip_proto::TCP, tcp::SYN_RECV), 60);
        assert_eq!(t.of(ip_proto::TCP, tcp::CLOSE), 10);
        t.set_ipvsadm(3600, 0, 60);
        assert_eq!(t.ipvsadm_triple(), (3600, 120, 60));
    }

    #[test]
    fn sctp_lifecycle() {
        let mut s = sctp::NONE;
        for (c, want) in [
            (chunk::INIT, sctp::INIT),
            (chunk::COOKIE_ECHO, sctp::ESTABLISHED),
            (chunk::DATA, sctp::ESTABLISHED),
            (chunk::SHUTDOWN, sctp::SHUTDOWN),
            (chunk::SHUTDOWN_COMPLETE, sctp::CLOSED),
        ] {
            s = sctp_next(s, Some(c));
            assert_eq!(s, want);
        }
        assert!(is_active(ip_proto::SCTP, sctp::ESTABLISHED));
        assert!(!is_active(ip_proto::UDP, udp::SEEN));
    }

    #[test]
    fn classes() {
        assert!(!is_established_class(ip_proto::TCP, tcp::SYN_RECV));
        assert!(is_established_class(ip_proto::TCP, tcp::ESTABLISHED));
        assert!(is_established_class(ip_proto::TCP, tcp::FIN_WAIT));
        assert!(!is_established_class(ip_proto::UDP, udp::NEW));
        assert!(is_established_class(ip_proto::UDP, udp::SEEN));
        assert_eq!(state_name(ip_proto::UDP, 0), "UDP");
        assert_eq!(state_name(ip_proto::TCP, tcp::TIME_WAIT), "TIME_WAIT");
    }
}
