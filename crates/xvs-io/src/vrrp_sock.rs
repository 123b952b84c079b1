//! The sockets of high availability: a raw IP socket for VRRP advertisements per interface and
//! family (IPv4 with the IP header xvs builds, as keepalived does: TOS 0xC0, TTL 255; IPv6 with
//! the kernel computing the checksum at offset 6), and a packet socket for gratuitous ARPs and
//! unsolicited neighbour advertisements. Non-blocking; the caller polls their descriptors.

use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, SockaddrIn6, sockopt};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// IP protocol number of VRRP.
const PROTO_VRRP: i32 = 112;
/// keepalived's TOS for adverts (IPTOS_PREC_INTERNETCONTROL).
const TOS: u8 = 0xc0;

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// A received VRRP packet: where from and to, its TTL / hop limit, and where the VRRP
/// payload lies in the buffer given to [`VrrpSocket::recv`] (cut to the IP packet's length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Start of the VRRP packet in the buffer.
    pub start: usize,
    /// Its length.
    pub len: usize,
}

/// A raw VRRP socket on one interface and family.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: OwnedFd,
    v6: bool,
    ip_id: u16,
}

fn set_int(fd: RawFd, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: `v` is a live c_int of the size given; `fd` is a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl VrrpSocket {
    /// Opens a raw VRRP socket bound to `ifname` (index `ifindex`), joined to the VRRP group of
    /// its family (224.0.0.18 or ff02::12) unless `unicast`.
    pub fn open(ifname: &str, ifindex: u32, v6: bool, unicast: bool) -> io::Result<VrrpSocket> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain syscall; 112 is a valid IP protocol number; the result is checked and
        // owned below.
        let raw_fd = unsafe {
            libc::socket(
                family,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                PROTO_VRRP,
            )
        };
        if raw_fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw_fd` is a new descriptor that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw_fd) };
        socket::setsockopt(
            &fd,
            sockopt::BindToDevice,
            &std::ffi::OsString::from(ifname),
        )
        .map_err(nix_err)?;
        let raw = fd.as_raw_fd();
        if v6 {
            // The kernel computes and checks the checksum (pseudo-header with the real
            // addresses), as keepalived asks.
            set_int(raw, libc::IPPROTO_RAW, libc::IPV6_CHECKSUM, 6)?;
            set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, 255)?;
            set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, 0)?;
            set_int(
                raw,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_IF,
                ifindex as i32,
            )?;
            set_int(raw, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, i32::from(TOS))?;
            socket::setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true).map_err(nix_err)?;
            socket::setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true).map_err(nix_err)?;
            if !unicast {
                let group = Ipv6Addr::from(crate_group_v6());
                let mreq = libc::ipv6_mreq {
                    ipv6mr_multiaddr: libc::in6_addr {
                        s6_addr: group.octets(),
                    },
                    ipv6mr_interface: ifindex,
                };
                // SAFETY: `mreq` is a live ipv6_mreq of the size given.
                let rc = unsafe {
                    libc::setsockopt(
                        raw,
                        libc::IPPROTO_IPV6,
                        libc::IPV6_ADD_MEMBERSHIP,
                        (&mreq as *const libc::ipv6_mreq).cast(),
                        size_of::<libc::ipv6_mreq>() as libc::socklen_t,
                    )
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        } else {
            set_int(raw, libc::IPPROTO_IP, libc::IP_HDRINCL, 1)?;
            set_int(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, 0)?;
            set_int(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, 255)?;
            if !unicast {
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr {
                        s_addr: u32::from_ne_bytes([224, 0, 0, 18]),
                    },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as i32,
                };
                // SAFETY: `mreq` is a live ip_mreqn of the size given.
                let rc = unsafe {
                    libc::setsockopt(
                        raw,
                        libc::IPPROTO_IP,
                        libc::IP_ADD_MEMBERSHIP,
                        (&mreq as *const libc::ip_mreqn).cast(),
                        size_of::<libc::ip_mreqn>() as libc::socklen_t,
                    )
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
                let ifreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr { s_addr: 0 },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as i32,
                };
                // SAFETY: as above; IP_MULTICAST_IF takes an ip_mreqn.
                let rc = unsafe {
                    libc::setsockopt(
                        raw,
                        libc::IPPROTO_IP,
                        libc::IP_MULTICAST_IF,
                        (&ifreq as *const libc::ip_mreqn).cast(),
                        size_of::<libc::ip_mreqn>() as libc::socklen_t,
                    )
                };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(VrrpSocket { fd, v6, ip_id: 0 })
    }

    /// Its descriptor, to poll.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Reads one packet into `buf` if one is waiting.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        if self.v6 {
            return self.recv_v6(buf);
        }
        // SAFETY: `buf` is a live, writable buffer of the length given.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(e),
            };
        }
        let n = n as usize;
        // The IPv4 header the raw socket hands over.
        if n < 20 || buf[0] >> 4 != 4 {
            return Ok(Some(Received {
                src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                ttl: 0,
                start: 0,
                len: 0,
            }));
        }
        let ihl = usize::from(buf[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([buf[2], buf[3]])).min(n);
        let ip4 = |at: usize| {
            IpAddr::V4(Ipv4Addr::new(
                buf[at],
                buf[at + 1],
                buf[at + 2],
                buf[at + 3],
            ))
        };
        Ok(Some(Received {
            src: ip4(12),
            dst: ip4(16),
            ttl: buf[8],
            start: ihl.min(total),
            len: total.saturating_sub(ihl),
        }))
    }

    fn recv_v6(&mut self, buf: &mut [u8]) -> io::Result<Option<Received>> {
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let mut iov = [io::IoSliceMut::new(buf)];
        let r = match socket::recvmsg::<SockaddrIn6>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(r) => r,
            Err(nix::Error::EAGAIN | nix::Error::EINTR) => return Ok(None),
            Err(e) => return Err(nix_err(e)),
        };
        let mut dst = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let mut ttl = 0u8;
        if let Ok(cmsgs) = r.cmsgs() {
            for c in cmsgs {
                match c {
                    ControlMessageOwned::Ipv6PacketInfo(p) => {
                        dst = IpAddr::V6(Ipv6Addr::from(p.ipi6_addr.s6_addr));
                    }
                    ControlMessageOwned::Ipv6HopLimit(h) => ttl = h.clamp(0, 255) as u8,
                    _ => {}
                }
            }
        }
        let src = r
            .address
            .map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |a| IpAddr::V6(a.ip()));
        Ok(Some(Received {
            src,
            dst,
            ttl,
            start: 0,
            len: r.bytes,
        }))
    }

    /// Sends a VRRP packet from `src` to `dst` (IPv4: the IP header is built here: TOS 0xC0,
    /// no DF, the TTL given, an ID that counts up and is never 0, as keepalived's; IPv6: the
    /// kernel builds it, its checksum field included, hop limit 255 to the group).
    pub fn send(&mut self, src: IpAddr, dst: IpAddr, ttl: u8, vrrp: &[u8]) -> io::Result<()> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                self.ip_id = self.ip_id.wrapping_add(1).max(1);
                let total = 20 + vrrp.len();
                let mut pkt = vec![0u8; total];
                pkt[0] = 0x45;
                pkt[1] = TOS;
                pkt[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                pkt[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
                pkt[8] = ttl;
                pkt[9] = PROTO_VRRP as u8;
                pkt[12..16].copy_from_slice(&s.octets());
                pkt[16..20].copy_from_slice(&d.octets());
                pkt[20..].copy_from_slice(vrrp);
                let to = socket::SockaddrIn::from(std::net::SocketAddrV4::new(d, 0));
                let flags = if d.is_multicast() {
                    MsgFlags::from_bits_retain(libc::MSG_DONTROUTE)
                } else {
                    MsgFlags::empty()
                };
                socket::sendto(self.fd.as_raw_fd(), &pkt, &to, flags).map_err(nix_err)?;
            }
            (_, IpAddr::V6(d)) => {
                let hops = if d.is_multicast() {
                    255
                } else {
                    i32::from(ttl)
                };
                set_int(
                    self.fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_UNICAST_HOPS,
                    hops,
                )?;
                let to = SockaddrIn6::from(std::net::SocketAddrV6::new(d, 0, 0, 0));
                socket::sendto(self.fd.as_raw_fd(), vrrp, &to, MsgFlags::empty())
                    .map_err(nix_err)?;
            }
            _ => return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
        }
        Ok(())
    }
}

fn crate_group_v6() -> [u8; 16] {
    [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12]
}

/// A packet socket on one interface, for frames built whole (gratuitous ARP, unsolicited NA).
#[derive(Debug)]
pub struct FrameSocket {
    fd: OwnedFd,
    ifindex: u32,
}

impl FrameSocket {
    /// Opens it on interface `ifindex`.
    pub fn open(ifindex: u32) -> io::Result<FrameSocket> {
        // SAFETY: plain syscall; the result is checked and owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(FrameSocket { fd, ifindex })
    }

    /// Sends `frame` (Ethernet header included) out of the interface.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: all-zero is a valid sockaddr_ll before the fields are set.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(frame.get(..6).unwrap_or(&[0xff; 6]));
        // SAFETY: `frame` and `sll` are live for the call, with the lengths given.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_fd().as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
