//! How many receive queues an interface has: its channels as ethtool reports them
//! (`ETHTOOL_GCHANNELS`: combined plus receive-only channels), or, for a driver without
//! channel support, the `queues/rx-N` entries in sysfs.

use std::ffi::CString;
use std::io;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// `struct ifreq` with the data pointer member of its union.
#[repr(C)]
struct IfreqData {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// An interface's receive queues and where the number came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxQueues {
    /// Receive queues in use.
    pub count: u32,
    /// The most the driver allows (as ethtool's maximum; `count` when unknown).
    pub max: u32,
    /// True if read from ethtool's channels, false if counted in sysfs.
    pub from_ethtool: bool,
}

fn channels(ifname: &str) -> io::Result<EthtoolChannels> {
    if ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {ifname} is too long"),
        ));
    }
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    let mut req = IfreqData {
        name: [0; libc::IFNAMSIZ],
        data: (&raw mut ch).cast(),
        _pad: [0; 16],
    };
    for (d, s) in req.name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `req` is an ifreq whose data member points at `ch`, a live ethtool_channels the
    // kernel fills in; both outlive the call.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL, &raw mut req) };
    let err = io::Error::last_os_error();
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(ch)
}

fn sysfs_rx_queues(ifname: &str) -> io::Result<u32> {
    let dir = format!("/sys/class/net/{ifname}/queues");
    let n = std::fs::read_dir(&dir)?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(n as u32)
}

/// The receive queues of `ifname`.
pub fn rx_queues(ifname: &str) -> io::Result<RxQueues> {
    CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    match channels(ifname) {
        Ok(ch) if ch.combined_count + ch.rx_count > 0 => Ok(RxQueues {
            count: ch.combined_count + ch.rx_count,
            max: (ch.max_combined + ch.max_rx).max(ch.combined_count + ch.rx_count),
            from_ethtool: true,
        }),
        Ok(_) => fallback(ifname),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => fallback(ifname),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("interface {ifname} does not exist"),
        )),
        Err(e) => Err(e),
    }
}

fn fallback(ifname: &str) -> io::Result<RxQueues> {
    let n = sysfs_rx_queues(ifname)?;
    Ok(RxQueues {
        count: n,
        max: n,
        from_ethtool: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_a_receive_queue() {
        // lo has no ethtool channels: the sysfs count answers (one queue).
        let q = rx_queues("lo").unwrap();
        assert!(q.count >= 1, "{q:?}");
        assert!(q.max >= q.count);
    }

    #[test]
    fn a_missing_interface_is_named() {
        let e = rx_queues("xvs-nonexistent0").unwrap_err();
        assert!(
            e.to_string().contains("xvs-nonexistent0") || e.kind() == io::ErrorKind::NotFound,
            "{e}"
        );
    }

    #[test]
    fn ifreq_is_the_kernel_size() {
        assert_eq!(size_of::<IfreqData>(), 40);
        assert_eq!(size_of::<EthtoolChannels>(), 36);
    }
}
