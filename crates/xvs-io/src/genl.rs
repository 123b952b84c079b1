//! The kernel's `netdev` generic-netlink family (Linux ≥ 6.8 for NAPI instances, ≥ 6.13 for
//! per-NAPI settings): which NAPI instance serves each receive queue, the kernel thread of a
//! threaded NAPI, and its `defer-hard-irqs` / `gro-flush-timeout` settings.
//!
//! The messages are small enough to build by hand: a netlink header, a generic-netlink header,
//! then type-length-value attributes padded to four bytes.

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_GENERIC};
use std::io;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

const NETDEV_CMD_QUEUE_GET: u8 = 10;
const NETDEV_CMD_NAPI_GET: u8 = 11;
const NETDEV_CMD_NAPI_SET: u8 = 14;

const NETDEV_A_NAPI_IFINDEX: u16 = 1;
const NETDEV_A_NAPI_ID: u16 = 2;
const NETDEV_A_NAPI_IRQ: u16 = 3;
const NETDEV_A_NAPI_PID: u16 = 4;
const NETDEV_A_NAPI_DEFER_HARD_IRQS: u16 = 5;
const NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT: u16 = 6;

const NETDEV_A_QUEUE_ID: u16 = 1;
const NETDEV_A_QUEUE_IFINDEX: u16 = 2;
const NETDEV_A_QUEUE_TYPE: u16 = 3;
const NETDEV_A_QUEUE_NAPI_ID: u16 = 4;
const NETDEV_QUEUE_TYPE_RX: u32 = 0;

/// One NAPI instance of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Napi {
    /// NAPI id.
    pub id: u32,
    /// Interface index.
    pub ifindex: u32,
    /// Its interrupt, if it has one.
    pub irq: Option<u32>,
    /// Its kernel thread (threaded NAPI), if it has one.
    pub pid: Option<u32>,
    /// `defer-hard-irqs`, if reported.
    pub defer_hard_irqs: Option<u32>,
    /// `gro-flush-timeout` in nanoseconds, if reported.
    pub gro_flush_timeout: Option<u64>,
}

/// One receive queue and the NAPI instance that serves it (if the driver says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxQueue {
    /// Queue index.
    pub id: u32,
    /// The NAPI id (drivers that do not link queues to NAPI instances report none).
    pub napi_id: Option<u32>,
}

/// Appends one attribute.
fn put_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// A whole request: netlink header, generic-netlink header, attributes.
fn message(family: u16, flags: u16, seq: u32, cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

/// The attributes of a buffer: (type without flag bits, payload).
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[len.next_multiple_of(4).min(b.len())..];
        Some((kind, payload))
    })
}

/// An unsigned attribute of 1, 2, 4 or 8 bytes (netlink's `uint` sends 4 or 8).
fn uint(p: &[u8]) -> Option<u64> {
    match p.len() {
        1 => Some(u64::from(p[0])),
        2 => Some(u64::from(u16::from_ne_bytes([p[0], p[1]]))),
        4 => Some(u64::from(u32::from_ne_bytes(p.try_into().ok()?))),
        8 => Some(u64::from_ne_bytes(p.try_into().ok()?)),
        _ => None,
    }
}

fn parse_napi(a: &[u8]) -> Option<Napi> {
    let mut n = Napi {
        id: 0,
        ifindex: 0,
        irq: None,
        pid: None,
        defer_hard_irqs: None,
        gro_flush_timeout: None,
    };
    for (k, p) in attrs(a) {
        let v = uint(p);
        match k {
            NETDEV_A_NAPI_ID => n.id = v? as u32,
            NETDEV_A_NAPI_IFINDEX => n.ifindex = v? as u32,
            NETDEV_A_NAPI_IRQ => n.irq = v.map(|v| v as u32),
            NETDEV_A_NAPI_PID => n.pid = v.map(|v| v as u32).filter(|&p| p != 0),
            NETDEV_A_NAPI_DEFER_HARD_IRQS => n.defer_hard_irqs = v.map(|v| v as u32),
            NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT => n.gro_flush_timeout = v,
            _ => {}
        }
    }
    (n.id != 0).then_some(n)
}

fn parse_queue(a: &[u8]) -> Option<(u32, RxQueue)> {
    let (mut id, mut ifindex, mut kind, mut napi) = (None, None, None, None);
    for (k, p) in attrs(a) {
        match k {
            NETDEV_A_QUEUE_ID => id = uint(p),
            NETDEV_A_QUEUE_IFINDEX => ifindex = uint(p),
            NETDEV_A_QUEUE_TYPE => kind = uint(p),
            NETDEV_A_QUEUE_NAPI_ID => napi = uint(p),
            _ => {}
        }
    }
    if kind? != u64::from(NETDEV_QUEUE_TYPE_RX) {
        return None;
    }
    Some((
        ifindex? as u32,
        RxQueue {
            id: id? as u32,
            napi_id: napi.map(|n| n as u32).filter(|&n| n != 0),
        },
    ))
}

/// A generic-netlink socket talking to the `netdev` family.
pub struct Netdev {
    sock: Socket,
    family: u16,
    seq: u32,
}

impl Netdev {
    /// Opens the socket and resolves the family; an error if the kernel has no `netdev`
    /// family (before Linux 6.3).
    pub fn open() -> io::Result<Netdev> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let mut nd = Netdev {
            sock,
            family: GENL_ID_CTRL,
            seq: 0,
        };
        let mut a = Vec::new();
        put_attr(&mut a, CTRL_ATTR_FAMILY_NAME, b"netdev\0");
        let replies = nd.request(CTRL_CMD_GETFAMILY, 0, &a).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("the kernel's netdev netlink family is not available: {e}"),
            )
        })?;
        let id = replies
            .iter()
            .flat_map(|r| attrs(r))
            .find(|(k, _)| *k == CTRL_ATTR_FAMILY_ID)
            .and_then(|(_, p)| uint(p))
            .ok_or_else(|| io::Error::other("no id in the netdev family's description"))?;
        nd.family = id as u16;
        Ok(nd)
    }

    /// Sends one request and collects the attribute blocks of the replies (one per message;
    /// until DONE for a dump, or the acknowledgement).
    fn request(&mut self, cmd: u8, flags: u16, attrs: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = flags & NLM_F_DUMP != 0;
        let m = message(self.family, flags | NLM_F_ACK, seq, cmd, attrs);
        self.sock.send(&m, 0)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.sock.recv_from_full()?;
            let mut off = 0;
            while off + 16 <= data.len() {
                let h = &data[off..];
                let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let kind = u16::from_ne_bytes([h[4], h[5]]);
                let rseq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
                if len < 16 || off + len > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let body = &data[off + 16..off + len];
                off += len.next_multiple_of(4);
                if rseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        if !dump {
                            return Ok(out);
                        }
                    }
                    _ => {
                        if body.len() >= 4 {
                            out.push(body[4..].to_vec());
                        }
                    }
                }
            }
        }
    }

    /// The NAPI instances of interface `ifindex`.
    pub fn napis(&mut self, ifindex: u32) -> io::Result<Vec<Napi>> {
        let mut a = Vec::new();
        put_attr(&mut a, NETDEV_A_NAPI_IFINDEX, &ifindex.to_ne_bytes());
        let r = self.request(NETDEV_CMD_NAPI_GET, NLM_F_DUMP, &a)?;
        let mut v: Vec<Napi> = r
            .iter()
            .filter_map(|b| parse_napi(b))
            .filter(|n| n.ifindex == ifindex)
            .collect();
        v.sort_by_key(|n| n.id);
        Ok(v)
    }

    /// The receive queues of interface `ifindex`, in queue order.
    pub fn rx_queues(&mut self, ifindex: u32) -> io::Result<Vec<RxQueue>> {
        let mut a = Vec::new();
        put_attr(&mut a, NETDEV_A_QUEUE_IFINDEX, &ifindex.to_ne_bytes());
        let r = self.request(NETDEV_CMD_QUEUE_GET, NLM_F_DUMP, &a)?;
        let mut v: Vec<RxQueue> = r
            .iter()
            .filter_map(|b| parse_queue(b))
            .filter(|(i, _)| *i == ifindex)
            .map(|(_, q)| q)
            .collect();
        v.sort_by_key(|q| q.id);
        Ok(v)
    }

    /// Sets `defer-hard-irqs` and `gro-flush-timeout` (ns) of NAPI instance `id` (Linux ≥ 6.13).
    pub fn set_napi(
        &mut self,
        id: u32,
        defer_hard_irqs: u32,
        gro_flush_timeout: u64,
    ) -> io::Result<()> {
        let mut a = Vec::new();
        put_attr(&mut a, NETDEV_A_NAPI_ID, &id.to_ne_bytes());
        put_attr(
            &mut a,
            NETDEV_A_NAPI_DEFER_HARD_IRQS,
            &defer_hard_irqs.to_ne_bytes(),
        );
        put_attr(
            &mut a,
            NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT,
            &gro_flush_timeout.to_ne_bytes(),
        );
        self.request(NETDEV_CMD_NAPI_SET, 0, &a).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_read_back() {
        let mut b = Vec::new();
        put_attr(&mut b, 7, &[1, 2, 3]);
        put_attr(&mut b, 2, &42u32.to_ne_bytes());
        put_attr(&mut b, 6, &(1u64 << 40).to_ne_bytes());
        assert_eq!(b.len(), 8 + 8 + 12);
        let got: Vec<(u16, Vec<u8>)> = attrs(&b).map(|(k, p)| (k, p.to_vec())).collect();
        assert_eq!(got[0], (7, vec![1, 2, 3]));
        assert_eq!(uint(&got[1].1), Some(42));
        assert_eq!(uint(&got[2].1), Some(1 << 40));
    }

    #[test]
    fn truncated_attributes_end_the_walk() {
        let mut b = Vec::new();
        put_attr(&mut b, 1, &5u32.to_ne_bytes());
        b.extend_from_slice(&[40, 0, 2, 0, 1]); // claims 40 bytes, has 5
        assert_eq!(attrs(&b).count(), 1);
        assert_eq!(attrs(&[1, 0]).count(), 0);
    }

    #[test]
    fn napi_and_queue_replies_parse() {
        let mut b = Vec::new();
        put_attr(&mut b, NETDEV_A_NAPI_IFINDEX, &3u32.to_ne_bytes());
        put_attr(&mut b, NETDEV_A_NAPI_ID, &513u32.to_ne_bytes());
        put_attr(&mut b, NETDEV_A_NAPI_PID, &4242u32.to_ne_bytes());
        put_attr(
            &mut b,
            NETDEV_A_NAPI_GRO_FLUSH_TIMEOUT,
            &200_000u32.to_ne_bytes(),
        );
        let n = parse_napi(&b).unwrap();
        assert_eq!((n.id, n.ifindex, n.pid, n.irq), (513, 3, Some(4242), None));
        assert_eq!(n.gro_flush_timeout, Some(200_000));
        let mut q = Vec::new();
        put_attr(&mut q, NETDEV_A_QUEUE_ID, &1u32.to_ne_bytes());
        put_attr(&mut q, NETDEV_A_QUEUE_IFINDEX, &3u32.to_ne_bytes());
        put_attr(
            &mut q,
            NETDEV_A_QUEUE_TYPE,
            &NETDEV_QUEUE_TYPE_RX.to_ne_bytes(),
        );
        assert_eq!(
            parse_queue(&q),
            Some((
                3,
                RxQueue {
                    id: 1,
                    napi_id: None
                }
            ))
        );
        let mut tx = Vec::new();
        put_attr(&mut tx, NETDEV_A_QUEUE_ID, &1u32.to_ne_bytes());
        put_attr(&mut tx, NETDEV_A_QUEUE_IFINDEX, &3u32.to_ne_bytes());
        put_attr(&mut tx, NETDEV_A_QUEUE_TYPE, &1u32.to_ne_bytes());
        assert_eq!(
            parse_queue(&tx),
            None,
            "transmit queues are not receive queues"
        );
    }

    #[test]
    fn request_layout() {
        let m = message(0x1a, NLM_F_DUMP, 9, NETDEV_CMD_NAPI_GET, &[0; 8]);
        assert_eq!(m.len(), 28);
        assert_eq!(u32::from_ne_bytes(m[..4].try_into().unwrap()), 28);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 0x1a);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_DUMP | NLM_F_REQUEST);
        assert_eq!(m[16], NETDEV_CMD_NAPI_GET);
    }

    #[test]
    fn the_running_kernel_answers_for_loopback() {
        // Every kernel this project supports (6.x) has the netdev family; loopback has no
        // NAPI instance, so the dump is empty but must succeed.
        let mut nd = Netdev::open().expect("netdev family");
        let napis = nd.napis(1).expect("napi dump");
        assert!(napis.iter().all(|n| n.ifindex == 1));
        nd.rx_queues(1).expect("queue dump");
    }
}
