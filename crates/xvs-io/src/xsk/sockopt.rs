//! The socket options an AF_XDP socket takes beyond binding: busy polling, the copy-mode
//! transmit budget, and what the kernel reports back (zero-copy, NAPI id, ring statistics).

use std::io;

const SOL_XDP: i32 = 283;
const XDP_OPTIONS: i32 = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;
/// Descriptors one `sendto` may transmit in copy mode (Linux ≥ 6.17; 32 before).
const XDP_MAX_TX_SKB_BUDGET: i32 = 9;

const SO_BUSY_POLL: i32 = 46;
const SO_INCOMING_NAPI_ID: i32 = 56;
const SO_PREFER_BUSY_POLL: i32 = 69;
const SO_BUSY_POLL_BUDGET: i32 = 70;

/// The copy-mode transmit budget of kernels without `XDP_MAX_TX_SKB_BUDGET`.
pub const DEFAULT_TX_BUDGET: u32 = 32;

fn set(fd: i32, level: i32, opt: i32, v: u32) -> io::Result<()> {
    // SAFETY: the option value is a 4-byte integer, as every option set here takes.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&raw const v).cast::<libc::c_void>(),
            size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn get(fd: i32, level: i32, opt: i32) -> io::Result<u32> {
    let mut v: u32 = 0;
    let mut len = size_of::<u32>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for the call; every option read here is 4 bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            (&raw mut v).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(v)
    }
}

/// True if the bound socket runs in zero-copy mode.
pub fn zero_copy(fd: i32) -> bool {
    get(fd, SOL_XDP, XDP_OPTIONS).is_ok_and(|f| f & XDP_OPTIONS_ZEROCOPY != 0)
}

/// The NAPI instance the socket's queue is served by (0: none known — no busy polling).
pub fn napi_id(fd: i32) -> u32 {
    get(fd, libc::SOL_SOCKET, SO_INCOMING_NAPI_ID).unwrap_or(0)
}

/// Preferred busy polling on the socket: `usecs` of polling per system call, `budget`
/// frames per poll.
pub fn busy_poll(fd: i32, usecs: u32, budget: u32) -> io::Result<()> {
    set(fd, libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, 1)?;
    set(fd, libc::SOL_SOCKET, SO_BUSY_POLL, usecs)?;
    set(fd, libc::SOL_SOCKET, SO_BUSY_POLL_BUDGET, budget)
}

/// Raises the copy-mode transmit budget towards `want` (the kernel takes 32 up to the TX ring
/// size); returns what it granted (32 on kernels without the option).
pub fn tx_budget(fd: i32, want: u32) -> u32 {
    if want <= DEFAULT_TX_BUDGET {
        return DEFAULT_TX_BUDGET;
    }
    match set(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, want) {
        Ok(()) => want,
        Err(_) => DEFAULT_TX_BUDGET,
    }
}

/// Busy-polls the socket's receive side once (`recvfrom` with nothing to read): with busy
/// polling on, the kernel runs the queue's receive in this thread, a budget at a time.
pub fn poll_rx(fd: i32) {
    // SAFETY: a zero-length receive with a null buffer and no address, as AF_XDP expects.
    unsafe {
        libc::recvfrom(
            fd,
            std::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_on_a_non_xdp_socket() {
        // SAFETY: plain socket creation.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
        assert!(fd >= 0);
        assert!(
            !zero_copy(fd),
            "a UDP socket is not a zero-copy AF_XDP socket"
        );
        assert_eq!(napi_id(fd), 0);
        assert_eq!(tx_budget(fd, 16), DEFAULT_TX_BUDGET);
        assert_eq!(
            tx_budget(fd, 512),
            DEFAULT_TX_BUDGET,
            "refused: not an XDP socket"
        );
        busy_poll(fd, 20, 64).expect("busy-poll options exist for every socket");
        // SAFETY: closing the socket opened above.
        unsafe { libc::close(fd) };
    }
}
