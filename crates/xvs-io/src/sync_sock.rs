//! The UDP sockets of connection sync, as the kernel's sync daemons set theirs up
//! (ip_vs_sync.c `make_send_sock` / `make_receive_sock`): bound to the interface, multicast
//! out of it with the TTL asked and no loopback (a director never hears itself); the receiver
//! bound to the group and port and joined to the group on the interface.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};

fn setopt<T>(fd: i32, level: i32, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size given; `fd` is a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn bind(fd: i32, a: SocketAddr) -> io::Result<()> {
    let r = match a {
        SocketAddr::V4(v) => nix::sys::socket::bind(fd, &nix::sys::socket::SockaddrIn::from(v)),
        SocketAddr::V6(v) => nix::sys::socket::bind(fd, &nix::sys::socket::SockaddrIn6::from(v)),
    };
    r.map_err(|e| io::Error::from_raw_os_error(e as i32))
}

fn udp(v6: bool, ifname: &str) -> io::Result<(UdpSocket, i32)> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain syscall; the result is checked and owned below.
    let fd = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns; the UdpSocket owns it from here.
    let sock = UdpSocket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let name = ifname.as_bytes();
    // SAFETY: `name` is live for the call, with its length; SO_BINDTODEVICE takes the bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    setopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &1i32)?;
    Ok((sock, fd))
}

/// Opens the sending socket of a master: out of `ifname` (index `ifindex`) to `group`, with
/// multicast TTL `ttl`, loopback off, and (IPv4) DF clear so IP may fragment.
pub fn sender(ifname: &str, ifindex: u32, group: IpAddr, ttl: u8) -> io::Result<UdpSocket> {
    let (sock, fd) = udp(group.is_ipv6(), ifname)?;
    match group {
        IpAddr::V4(_) => {
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr { s_addr: 0 },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            setopt(fd, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
            setopt(
                fd,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                &libc::IP_PMTUDISC_DONT,
            )?;
            sock.set_multicast_loop_v4(false)?;
            sock.set_multicast_ttl_v4(u32::from(ttl))?;
            bind(fd, SocketAddr::new(IpAddr::from([0u8; 4]), 0))?;
        }
        IpAddr::V6(_) => {
            setopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_IF,
                &(ifindex as i32),
            )?;
            setopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_MULTICAST_HOPS,
                &i32::from(ttl),
            )?;
            sock.set_multicast_loop_v6(false)?;
            bind(fd, SocketAddr::new(IpAddr::from([0u16; 8]), 0))?;
        }
    }
    Ok(sock)
}

/// Opens the receiving socket of a backup: bound to `group`:`port` on `ifname`, joined to
/// the group there; reads time out after `timeout` (so the thread sees its stop flag).
pub fn receiver(
    ifname: &str,
    ifindex: u32,
    group: IpAddr,
    port: u16,
    timeout: std::time::Duration,
) -> io::Result<UdpSocket> {
    let (sock, fd) = udp(group.is_ipv6(), ifname)?;
    bind(fd, SocketAddr::new(group, port))?;
    match group {
        IpAddr::V4(g) => {
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(g.octets()),
                },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as i32,
            };
            setopt(fd, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
        }
        IpAddr::V6(g) => sock.join_multicast_v6(&g, ifindex)?,
    }
    sock.set_read_timeout(Some(timeout))?;
    Ok(sock)
}
