//! IPVS connection-synchronisation messages, version 1 (the kernel's `ip_vs_sync.c`:
//! `struct ip_vs_sync_mesg` and `struct ip_vs_sync_v4` / `ip_vs_sync_v6`), as a kernel IPVS
//! backup reads them and a master sends them: UDP payloads, multicast to 224.0.0.81:8848.
//!
//! ```text
//! message header (8 bytes):
//!   0 reserved (0)   1 syncid   2-3 size (whole message, BE)   4 nr_conns   5 version (1)
//!   6-7 spare (0)
//! connection (36 bytes for IPv4, 72 for IPv6), then options, padded to 4 bytes:
//!   0 type (bit 0: IPv6)   1 protocol   2-3 ver_size (top 4 bits version 0, low 12 length)
//!   4-7 flags   8-9 state   10-11 cport   12-13 vport   14-15 dport   16-19 fwmark
//!   20-23 timeout (s)   24.. caddr, vaddr, daddr (4 or 16 bytes each)
//! ```
//! All fields are big-endian. Options (type, length, data) may follow a connection inside its
//! `ver_size` length; they are skipped here (xvs sends none).

use crate::view::{fields, view};
use crate::{Layer, Result, WireError};

/// The multicast group of IPv4 sync messages.
pub const GROUP_V4: [u8; 4] = [224, 0, 0, 81];
/// The UDP port (the kernel adds the sync thread's id; xvs has one thread).
pub const PORT: u16 = 8848;
/// Length of the message header.
pub const HEADER_LEN: usize = 8;
/// Message version this module reads and writes.
pub const VERSION: u8 = 1;
/// Length of an IPv4 connection.
pub const CONN_V4_LEN: usize = 36;
/// Length of an IPv6 connection.
pub const CONN_V6_LEN: usize = 72;
/// Largest message on standard Ethernet (1500 − IPv4 − UDP headers).
pub const MAX_LEN: usize = 1472;
/// The `type` bit of an IPv6 connection.
pub const TYPE_INET6: u8 = 1;

/// `IP_VS_CONN_F_*` values carried in a connection's flags.
pub mod flags {
    /// Forwarding method mask.
    pub const FWD_MASK: u32 = 0x0007;
    /// NAT (masquerading).
    pub const MASQ: u32 = 0x0000;
    /// Local node.
    pub const LOCALNODE: u32 = 0x0001;
    /// IPIP tunnel.
    pub const TUNNEL: u32 = 0x0002;
    /// Direct routing.
    pub const DROUTE: u32 = 0x0003;
    /// Bypass.
    pub const BYPASS: u32 = 0x0004;
    /// The entry came from a sync message.
    pub const SYNC: u32 = 0x0020;
    /// Hashed in the table (a master's own bit, cleared by backups).
    pub const HASHED: u32 = 0x0040;
    /// Inactive (not established).
    pub const INACTIVE: u32 = 0x0100;
    /// The client port is not set yet (persistence templates).
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling (never synced).
    pub const ONE_PACKET: u32 = 0x2000;
}

view! {
    /// A view of a sync message.
    pub struct SyncMessage;
}

fields! { SyncMessage {
    /// Reserved, 0 in version 1 (a version 0 message has `nr_conns` here).
    reserved /
        /// Sets it.
        set_reserved: u8 = 0;
    /// Sync id.
    syncid /
        /// Sets it.
        set_syncid: u8 = 1;
    /// Length of the whole message.
    size /
        /// Sets it.
        set_size: u16 = 2;
    /// Number of connections.
    nr_conns /
        /// Sets it.
        set_nr_conns: u8 = 4;
    /// Message version.
    version /
        /// Sets it.
        set_version: u8 = 5;
    /// Spare, 0.
    spare /
        /// Sets it.
        set_spare: u16 = 6;
}}

impl<T: AsRef<[u8]>> SyncMessage<T> {
    /// Checks the header is there and the buffer holds `size` bytes.
    pub fn check_len(&self) -> Result<()> {
        let got = self.buffer.as_ref().len();
        if got < HEADER_LEN {
            return Err(WireError::truncated(Layer::IpvsSync, HEADER_LEN, got));
        }
        let size = usize::from(self.size());
        if size < HEADER_LEN {
            return Err(WireError::BadTotalLen {
                layer: Layer::IpvsSync,
                min: HEADER_LEN,
                found: size,
            });
        }
        if got < size {
            return Err(WireError::truncated(Layer::IpvsSync, size, got));
        }
        Ok(())
    }

    /// The connections, read one after the other; stops at the first that does not frame.
    pub fn conns(&self) -> Conns<'_> {
        let b = self.buffer.as_ref();
        let end = usize::from(self.size()).min(b.len());
        Conns {
            buf: &b[HEADER_LEN.min(end)..end],
            left: self.nr_conns(),
        }
    }
}

/// A connection as a sync message carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncConn {
    /// IPv6 if true (addresses in the 16-byte form, IPv4 in its IPv4-mapped form otherwise).
    pub v6: bool,
    /// IP protocol.
    pub protocol: u8,
    /// `IP_VS_CONN_F_*` flags.
    pub flags: u32,
    /// Protocol state (IPVS's numbering).
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual port.
    pub vport: u16,
    /// Real server port.
    pub dport: u16,
    /// Firewall mark of a mark service (0 otherwise).
    pub fwmark: u32,
    /// Seconds the entry lives in this state.
    pub timeout: u32,
    /// Client address.
    pub caddr: [u8; 16],
    /// Virtual address.
    pub vaddr: [u8; 16],
    /// Real server address.
    pub daddr: [u8; 16],
}

impl SyncConn {
    /// Bytes it takes in a message (no options).
    pub const fn wire_len(&self) -> usize {
        if self.v6 { CONN_V6_LEN } else { CONN_V4_LEN }
    }

    /// Writes it at the start of `out` (at least [`SyncConn::wire_len`] bytes).
    pub fn emit(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.wire_len();
        let o = out.get_mut(..len)?;
        o.fill(0);
        o[0] = if self.v6 { TYPE_INET6 } else { 0 };
        o[1] = self.protocol;
        crate::put16(o, 2, len as u16 & 0x0fff);
        o[4..8].copy_from_slice(&self.flags.to_be_bytes());
        crate::put16(o, 8, self.state);
        crate::put16(o, 10, self.cport);
        crate::put16(o, 12, self.vport);
        crate::put16(o, 14, self.dport);
        o[16..20].copy_from_slice(&self.fwmark.to_be_bytes());
        o[20..24].copy_from_slice(&self.timeout.to_be_bytes());
        let al = if self.v6 { 16 } else { 4 };
        for (i, a) in [&self.caddr, &self.vaddr, &self.daddr]
            .into_iter()
            .enumerate()
        {
            let at = 24 + i * al;
            o[at..at + al].copy_from_slice(&a[16 - al..]);
        }
        Some(len)
    }
}

/// Why a connection in a message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnError {
    /// The message ends inside it.
    Truncated,
    /// Its version (top 4 bits of `ver_size`) is not 0.
    Version(u8),
    /// Its length is shorter than its family's connection.
    Length(u16),
}

/// The connections of a message.
#[derive(Debug)]
pub struct Conns<'a> {
    buf: &'a [u8],
    left: u8,
}

impl Iterator for Conns<'_> {
    type Item = core::result::Result<SyncConn, ConnError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let b = self.buf;
        if b.len() < 4 {
            self.left = 0;
            return Some(Err(ConnError::Truncated));
        }
        let ver_size = crate::be16(b, 2);
        let (ver, len) = ((ver_size >> 12) as u8, usize::from(ver_size & 0x0fff));
        let v6 = b[0] & TYPE_INET6 != 0;
        let min = if v6 { CONN_V6_LEN } else { CONN_V4_LEN };
        if ver != 0 {
            self.left = 0;
            return Some(Err(ConnError::Version(ver)));
        }
        if len < min {
            self.left = 0;
            return Some(Err(ConnError::Length(ver_size & 0x0fff)));
        }
        // Each connection is padded to a multiple of 4 bytes.
        let step = len.next_multiple_of(4);
        if b.len() < len {
            self.left = 0;
            return Some(Err(ConnError::Truncated));
        }
        self.buf = &b[step.min(b.len())..];
        let al = if v6 { 16 } else { 4 };
        let addr = |i: usize| {
            let at = 24 + i * al;
            let mut a = [0u8; 16];
            if v6 {
                a.copy_from_slice(&b[at..at + 16]);
            } else {
                a = crate::summary::v4_mapped([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            }
            a
        };
        Some(Ok(SyncConn {
            v6,
            protocol: b[1],
            flags: crate::be32(b, 4),
            state: crate::be16(b, 8),
            cport: crate::be16(b, 10),
            vport: crate::be16(b, 12),
            dport: crate::be16(b, 14),
            fwmark: crate::be32(b, 16),
            timeout: crate::be32(b, 20),
            caddr: addr(0),
            vaddr: addr(1),
            daddr: addr(2),
        }))
    }
}

/// Builds a message connection by connection.
#[derive(Debug)]
pub struct MessageBuilder<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u8,
}

impl<'a> MessageBuilder<'a> {
    /// A message with `syncid` in `buf` (its length is the largest message: at most
    /// [`MAX_LEN`] on standard Ethernet).
    pub fn new(buf: &'a mut [u8], syncid: u8) -> Option<MessageBuilder<'a>> {
        let h = buf.get_mut(..HEADER_LEN)?;
        h.fill(0);
        h[1] = syncid;
        h[5] = VERSION;
        Some(MessageBuilder {
            buf,
            len: HEADER_LEN,
            count: 0,
        })
    }

    /// Adds a connection; false if it does not fit (or 255 are in already): send the message
    /// and start another.
    pub fn push(&mut self, c: &SyncConn) -> bool {
        if self.count == u8::MAX {
            return false;
        }
        match c.emit(&mut self.buf[self.len..]) {
            Some(n) => {
                self.len += n.next_multiple_of(4);
                self.count += 1;
                true
            }
            None => false,
        }
    }

    /// Connections in it.
    pub fn count(&self) -> u8 {
        self.count
    }

    /// Finishes the header; the message is `buf[..len]`.
    pub fn finish(self) -> usize {
        let mut m = SyncMessage::new_unchecked(&mut *self.buf);
        m.set_size(self.len as u16);
        m.set_nr_conns(self.count);
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::v4_mapped;

    fn est() -> SyncConn {
        SyncConn {
            v6: false,
            protocol: 6,
            flags: flags::DROUTE,
            state: 1,
            cport: 40000,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout: 900,
            caddr: v4_mapped([203, 0, 113, 7]),
            vaddr: v4_mapped([198, 18, 0, 10]),
            daddr: v4_mapped([198, 18, 0, 11]),
        }
    }

    /// The bytes `struct ip_vs_sync_mesg` + `struct ip_vs_sync_v4` hold for one established
    /// DR connection, field by field from the kernel's declarations (ip_vs_sync.c).
    #[test]
    fn one_v4_connection_is_laid_out_as_the_kernel_declares_it() {
        let mut buf = [0u8; MAX_LEN];
        let mut m = MessageBuilder::new(&mut buf, 9).unwrap();
        assert!(m.push(&est()));
        let n = m.finish();
        let want: [u8; 44] = [
            0, 9, 0, 44, 1, 1, 0, 0, // reserved, syncid 9, size 44, 1 conn, version 1, spare
            0, 6, 0, 36, // type v4, TCP, ver_size = 36
            0, 0, 0, 3, // flags: DROUTE
            0, 1, // state ESTABLISHED
            0x9c, 0x40, 0, 80, 0, 80, // cport 40000, vport 80, dport 80
            0, 0, 0, 0, // fwmark
            0, 0, 0x03, 0x84, // timeout 900
            203, 0, 113, 7, 198, 18, 0, 10, 198, 18, 0, 11,
        ];
        assert_eq!(buf[..n], want);
        let msg = SyncMessage::new_checked(&buf[..n]).unwrap();
        assert_eq!((msg.syncid(), msg.version(), msg.nr_conns()), (9, 1, 1));
        let got: Vec<_> = msg.conns().collect();
        assert_eq!(got, vec![Ok(est())]);
    }

    #[test]
    fn v6_connections_and_full_messages() {
        let mut c6 = est();
        c6.v6 = true;
        c6.caddr = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7];
        c6.vaddr = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
        c6.daddr = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11];
        let mut buf = [0u8; MAX_LEN];
        let mut m = MessageBuilder::new(&mut buf, 0).unwrap();
        let mut pushed = 0;
        let c4 = est();
        while m.push(if pushed % 2 == 0 { &c6 } else { &c4 }) {
            pushed += 1;
        }
        // 8 + 13 × (72 + 36) = 1412; one more IPv6 connection would make 1484 > 1472.
        assert_eq!(pushed, 26);
        let n = m.finish();
        assert!(n <= MAX_LEN);
        let msg = SyncMessage::new_checked(&buf[..n]).unwrap();
        let got: Vec<_> = msg.conns().collect::<core::result::Result<_, _>>().unwrap();
        assert_eq!(got.len(), 26);
        assert_eq!(got[0], c6);
        assert_eq!(got[1], est());
    }

    #[test]
    fn damaged_messages_are_refused() {
        let mut buf = [0u8; 64];
        let mut m = MessageBuilder::new(&mut buf, 1).unwrap();
        m.push(&est());
        let n = m.finish();
        // The buffer is shorter than `size`.
        assert!(SyncMessage::new_checked(&buf[..n - 1]).is_err());
        // A connection claims a length below its family's.
        let mut bad = buf;
        bad[8 + 3] = 20;
        let msg = SyncMessage::new_checked(&bad[..n]).unwrap();
        assert_eq!(msg.conns().next(), Some(Err(ConnError::Length(20))));
        // More connections announced than there are.
        let mut bad = buf;
        bad[4] = 3;
        let msg = SyncMessage::new_checked(&bad[..n]).unwrap();
        let all: Vec<_> = msg.conns().collect();
        assert_eq!(all[0], Ok(est()));
        assert_eq!(all[1], Err(ConnError::Truncated));
        assert_eq!(all.len(), 2);
    }
}
