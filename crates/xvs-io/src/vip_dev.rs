//! A device that holds a VRRP master's IPv4 addresses for as long as xvsd lives.
//!
//! An address put on the served interface outlives a crashed xvsd: the host would go on
//! answering ARP for it and, its dataplane gone, reset every connection to it, so the new
//! master's clients would see their streams broken. A TAP device that is not persistent is
//! destroyed by the kernel when the last descriptor to it closes, however the process ends, and
//! its addresses with it. The host answers ARP for an address on any of its interfaces (Linux's
//! default `arp_ignore` 0), so the address still answers on the served interface while xvsd runs.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The device, while its descriptor is held.
#[derive(Debug)]
pub struct VipDevice {
    fd: OwnedFd,
    name: String,
}

impl VipDevice {
    /// Creates a TAP device named after `base` (the kernel numbers it: `base%d`).
    pub fn create(base: &str) -> io::Result<VipDevice> {
        let path = CString::new("/dev/net/tun").map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: `path` is a valid NUL-terminated string; the result is checked.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a new descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: all-zero is a valid ifreq before the fields are set.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        let pattern = format!("{base}%d");
        for (d, s) in ifr
            .ifr_name
            .iter_mut()
            .zip(pattern.bytes().take(libc::IFNAMSIZ - 1))
        {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: TUNSETIFF takes a pointer to an ifreq, live and writable for the call.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut ifr) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let name: String = ifr
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();
        Ok(VipDevice { fd, name })
    }

    /// The device's name (`xvs-vip0`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True while the descriptor is held (always: dropping it removes the device).
    pub fn is_held(&self) -> bool {
        self.fd.as_raw_fd() >= 0
    }
}
