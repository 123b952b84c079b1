//! One XDP program from an object compiled at build time: loaded, attached to an interface
//! (native mode with automatic fallback to generic/SKB mode, or as asked), its maps found by
//! name, and detached when dropped. The steering program and the benchmark sink both use it.

use crate::map::Map;
use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::c_void;

const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;

/// How to attach a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic mode if the driver refuses.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

/// Why a program could not be loaded, attached or used.
#[derive(Debug)]
pub struct BpfError {
    /// What was being done.
    pub what: String,
    /// The OS error.
    pub err: io::Error,
}

impl std::fmt::Display for BpfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.what, self.err)?;
        match self.err.raw_os_error() {
            Some(libc::EACCES) if self.what.starts_with("loading") => {
                write!(
                    f,
                    " (the kernel's verifier refused the program: see its log above)"
                )
            }
            Some(libc::EPERM) | Some(libc::EACCES) => {
                write!(
                    f,
                    " (run as root, or with CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)"
                )
            }
            Some(libc::EBUSY) | Some(libc::EEXIST) => write!(
                f,
                " (another XDP program is attached; remove it with `ip link set dev IF xdp off`)"
            ),
            Some(libc::EOPNOTSUPP) => {
                write!(f, " (the driver has no native XDP; use generic mode)")
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for BpfError {}

/// A `BpfError` from a negative errno as libbpf returns it.
pub(crate) fn err(what: impl Into<String>, code: i32) -> BpfError {
    BpfError {
        what: what.into(),
        err: io::Error::from_raw_os_error(code.abs()),
    }
}

/// A loaded program attached to one interface.
#[derive(Debug)]
pub(crate) struct XdpProgram {
    obj: *mut libbpf_sys::bpf_object,
    ifindex: i32,
    ifname: String,
    attach_flags: u32,
    mode: XdpMode,
}

// SAFETY: the libbpf object is only used through `&mut self` (or `&self` for read-only map
// lookups, which libbpf performs with plain syscalls on file descriptors); nothing in it is
// tied to the creating thread.
unsafe impl Send for XdpProgram {}

/// The index of interface `ifname`.
pub(crate) fn ifindex_of(ifname: &str) -> Result<i32, BpfError> {
    let cname = CString::new(ifname).map_err(|_| err("interface name", libc::EINVAL))?;
    // SAFETY: `cname` is a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
    if ifindex == 0 {
        return Err(BpfError {
            what: format!("interface {ifname} does not exist"),
            err: io::Error::last_os_error(),
        });
    }
    Ok(ifindex)
}

impl XdpProgram {
    /// Loads program `prog` of the compiled `object` (`what` names it in errors) and attaches
    /// it to `ifname` in `mode`.
    pub(crate) fn attach(
        object: &'static [u8],
        prog: &CStr,
        what: &str,
        ifname: &str,
        mode: XdpMode,
    ) -> Result<XdpProgram, BpfError> {
        let ifindex = ifindex_of(ifname)?;
        // SAFETY: `object` is a static byte slice that outlives the object (libbpf copies what
        // it needs); a null opts pointer selects defaults.
        let obj = unsafe {
            libbpf_sys::bpf_object__open_mem(
                object.as_ptr().cast::<c_void>(),
                object.len() as u64,
                std::ptr::null(),
            )
        };
        if obj.is_null() {
            return Err(BpfError {
                what: format!("opening the {what}"),
                err: io::Error::last_os_error(),
            });
        }
        // From here on, dropping `p` closes the object (and detaches once attached).
        let mut p = XdpProgram {
            obj,
            ifindex,
            ifname: ifname.into(),
            attach_flags: 0,
            mode,
        };
        // SAFETY: `obj` was opened above and is not loaded yet.
        let rc = unsafe { libbpf_sys::bpf_object__load(obj) };
        if rc != 0 {
            return Err(err(format!("loading the {what} for {ifname}"), rc));
        }
        // SAFETY: `obj` is loaded; the name is NUL-terminated.
        let handle = unsafe { libbpf_sys::bpf_object__find_program_by_name(obj, prog.as_ptr()) };
        if handle.is_null() {
            return Err(err(format!("the {what} has no {prog:?}"), libc::ENOENT));
        }
        // SAFETY: `handle` belongs to the loaded object.
        let prog_fd = unsafe { libbpf_sys::bpf_program__fd(handle) };
        let try_attach = |flags: u32| {
            // SAFETY: plain syscall wrapper on valid descriptors; null opts = defaults.
            unsafe {
                libbpf_sys::bpf_xdp_attach(
                    ifindex,
                    prog_fd,
                    flags | XDP_FLAGS_UPDATE_IF_NOEXIST,
                    std::ptr::null(),
                )
            }
        };
        let (flags, rc) = match mode {
            XdpMode::Native => (XDP_FLAGS_DRV_MODE, try_attach(XDP_FLAGS_DRV_MODE)),
            XdpMode::Generic => (XDP_FLAGS_SKB_MODE, try_attach(XDP_FLAGS_SKB_MODE)),
            XdpMode::Auto => match try_attach(XDP_FLAGS_DRV_MODE) {
                0 => (XDP_FLAGS_DRV_MODE, 0),
                e if e == -libc::EBUSY || e == -libc::EEXIST => (XDP_FLAGS_DRV_MODE, e),
                e => {
                    tracing::warn!(interface = ifname, error = %io::Error::from_raw_os_error(-e),
                        "native XDP refused; falling back to generic (SKB) mode");
                    (XDP_FLAGS_SKB_MODE, try_attach(XDP_FLAGS_SKB_MODE))
                }
            },
        };
        if rc != 0 {
            return Err(err(format!("attaching the {what} to {ifname}"), rc));
        }
        p.attach_flags = flags;
        Ok(p)
    }

    /// The map `name` (valid while `self` is).
    pub(crate) fn map(&self, name: &CStr) -> Result<Map, BpfError> {
        // SAFETY: `obj` is a loaded object owned by `self`, and the maps are only used by the
        // owners of `self` (the steering program and the sink keep both together).
        unsafe { Map::of(self.obj, name) }.ok_or_else(|| {
            err(
                format!("the XDP program has no map {name:?}"),
                -libc::ENOENT,
            )
        })
    }

    /// The interface index.
    pub(crate) fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The interface name.
    pub(crate) fn ifname(&self) -> &str {
        &self.ifname
    }

    /// True if attached in native (driver) mode.
    pub(crate) fn is_native(&self) -> bool {
        self.attach_flags == XDP_FLAGS_DRV_MODE
    }

    /// Points queue `queue` of the program's `XSKMAP` `map` at the AF_XDP socket `xsk_fd`.
    pub(crate) fn register_socket(
        &self,
        map: Map,
        queue: u32,
        xsk_fd: i32,
    ) -> Result<(), BpfError> {
        map.update(&queue, &xsk_fd).map_err(|e| BpfError {
            what: format!(
                "registering the AF_XDP socket of {} queue {queue}",
                self.ifname
            ),
            err: e,
        })
    }

    /// The mode asked for.
    pub(crate) fn requested_mode(&self) -> XdpMode {
        self.mode
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        if self.attach_flags != 0 {
            // SAFETY: detaching by interface index and the flags it was attached with.
            let rc = unsafe {
                libbpf_sys::bpf_xdp_detach(self.ifindex, self.attach_flags, std::ptr::null())
            };
            if rc != 0 {
                tracing::error!(interface = %self.ifname, error = %io::Error::from_raw_os_error(-rc),
                    "failed to detach the XDP program");
            }
        }
        // SAFETY: `obj` came from bpf_object__open_mem and is closed exactly once, here.
        unsafe { libbpf_sys::bpf_object__close(self.obj) };
    }
}

/// A program's map of AF_XDP sockets (an `XSKMAP` indexed by receive queue).
pub trait SocketMap {
    /// Points queue `queue` at the AF_XDP socket `xsk_fd`.
    fn register_socket(&mut self, queue: u32, xsk_fd: i32) -> Result<(), BpfError>;

    /// Where the worker of `queue` says it is behind, if the program listens.
    fn gate(&self, _queue: u32) -> Option<crate::gate::QueueGate> {
        None
    }
}

/// No program: sockets that only transmit (a traffic generator's) register nowhere.
#[cfg(feature = "bench")]
#[derive(Debug, Default)]
pub struct TxOnly;

#[cfg(feature = "bench")]
impl SocketMap for TxOnly {
    fn register_socket(&mut self, _queue: u32, _xsk_fd: i32) -> Result<(), BpfError> {
        Ok(())
    }
}

/// Detaches whatever XDP program is attached to `ifname` (both modes). For cleaning up after a
/// crash; programs detach themselves when dropped.
pub fn detach_any(ifname: &str) -> io::Result<()> {
    let ifindex = ifindex_of(ifname).map_err(|e| e.err)?;
    for flags in [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE] {
        // SAFETY: plain syscall wrapper.
        unsafe { libbpf_sys::bpf_xdp_detach(ifindex, flags, std::ptr::null()) };
    }
    Ok(())
}
