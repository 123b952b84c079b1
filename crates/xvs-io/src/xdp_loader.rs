//! One XDP program from an object compiled at build time: loaded, attached to an interface
//! (native mode with automatic fallback to generic/SKB mode, or as asked), its maps found by
//! name, and detached when dropped. The steering program and the benchmark sink both use it.
//!
//! The program is attached through a BPF link that this process owns: when the process ends,
//! however it ends, the kernel closes the link and the program goes with it, so a crashed xvsd
//! leaves no program behind to black-hole its interface. A program attached the old way (a
//! netdev flag, which outlives its process) is replaced if it is one of ours, and someone
//! else's only when asked to ([`Replace::Any`]).

use crate::map::Map;
use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::c_void;

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

/// What may be replaced on the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// A program of the same name left attached by a process that is gone.
    OursOnly,
    /// Any program not held by a live BPF link (`--force`).
    Any,
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
    /// The mode it attached in (`XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`).
    attach_flags: u32,
    /// The BPF link holding it on the interface (-1 before it is attached).
    link_fd: i32,
    mode: XdpMode,
    /// The loaded program (owned by `obj`).
    prog_fd: i32,
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
    /// Loads program `prog` of the compiled `object` (`what` names it in errors) without
    /// attaching it anywhere; returns it and its descriptor.
    fn load(
        object: &'static [u8],
        prog: &CStr,
        what: &str,
        ifname: &str,
        mode: XdpMode,
    ) -> Result<(XdpProgram, i32), BpfError> {
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
            ifindex: 0,
            ifname: ifname.into(),
            attach_flags: 0,
            link_fd: -1,
            mode,
            prog_fd: -1,
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
        p.prog_fd = prog_fd;
        Ok((p, prog_fd))
    }

    /// Loads program `prog` of the compiled `object` (`what` names it in errors), attached
    /// nowhere: for `BPF_PROG_TEST_RUN` ([`XdpProgram::test_run`]).
    #[cfg(feature = "test-run")]
    pub(crate) fn load_unattached(
        object: &'static [u8],
        prog: &CStr,
        what: &str,
    ) -> Result<XdpProgram, BpfError> {
        Self::load(object, prog, what, "(no interface)", XdpMode::Auto).map(|(p, _)| p)
    }

    /// Runs the program once on `frame` as if received on queue 0 (`BPF_PROG_TEST_RUN`);
    /// returns its action (`XDP_PASS`, `XDP_DROP`, …).
    #[cfg(feature = "test-run")]
    pub(crate) fn test_run(&self, frame: &[u8]) -> Result<u32, BpfError> {
        // SAFETY: the options are plain data, all-zero is their default.
        let mut opts: libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = size_of::<libbpf_sys::bpf_test_run_opts>() as _;
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = frame.len() as u32;
        opts.repeat = 1;
        // SAFETY: `prog_fd` is a loaded program owned by `self`; `opts` and the frame it
        // points to outlive the call, and no output buffers are given.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog_fd, &mut opts) };
        if rc != 0 {
            return Err(err("running the program on a test frame", rc));
        }
        Ok(opts.retval)
    }

    /// Loads program `prog` of the compiled `object` (`what` names it in errors) and attaches
    /// it to `ifname` in `mode`, after clearing what `replace` allows from the interface.
    pub(crate) fn attach(
        object: &'static [u8],
        prog: &CStr,
        what: &str,
        ifname: &str,
        mode: XdpMode,
        replace: Replace,
    ) -> Result<XdpProgram, BpfError> {
        let ifindex = ifindex_of(ifname)?;
        clear_the_way(ifindex, ifname, prog, replace)?;
        let (mut p, prog_fd) = Self::load(object, prog, what, ifname, mode)?;
        p.ifindex = ifindex;
        let try_attach = |flags: u32| {
            // SAFETY: the options are plain data, all-zero is their default.
            let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
            opts.sz = size_of::<libbpf_sys::bpf_link_create_opts>() as _;
            opts.flags = flags;
            // SAFETY: plain syscall wrapper on a valid program descriptor and interface index;
            // `opts` is initialised and outlives the call.
            unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex, libbpf_sys::BPF_XDP, &opts) }
        };
        let (flags, rc) = match mode {
            XdpMode::Native => (XDP_FLAGS_DRV_MODE, try_attach(XDP_FLAGS_DRV_MODE)),
            XdpMode::Generic => (XDP_FLAGS_SKB_MODE, try_attach(XDP_FLAGS_SKB_MODE)),
            XdpMode::Auto => match try_attach(XDP_FLAGS_DRV_MODE) {
                fd if fd >= 0 => (XDP_FLAGS_DRV_MODE, fd),
                e if e == -libc::EBUSY || e == -libc::EEXIST => (XDP_FLAGS_DRV_MODE, e),
                e => {
                    tracing::warn!(interface = ifname, error = %io::Error::from_raw_os_error(-e),
                        "native XDP refused; falling back to generic (SKB) mode");
                    (XDP_FLAGS_SKB_MODE, try_attach(XDP_FLAGS_SKB_MODE))
                }
            },
        };
        if rc < 0 {
            return Err(err(format!("attaching the {what} to {ifname}"), rc));
        }
        p.link_fd = rc;
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

    /// The kernel's id of the loaded program (0 if it cannot be read).
    pub(crate) fn id(&self) -> u32 {
        // SAFETY: the information block is plain data, all-zero before the kernel fills it.
        let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info` is a writable bpf_prog_info of `len` bytes; `prog_fd` is our loaded
        // program's.
        let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(self.prog_fd, &mut info, &mut len) };
        if rc != 0 { 0 } else { info.id }
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
        if self.link_fd >= 0 {
            // SAFETY: the link descriptor is ours and closed exactly once, here; closing the
            // last reference to the link detaches the program.
            unsafe { libc::close(self.link_fd) };
        }
        // SAFETY: `obj` came from bpf_object__open_mem and is closed exactly once, here.
        unsafe { libbpf_sys::bpf_object__close(self.obj) };
    }
}

/// The name of the loaded program `id` (empty if it cannot be read).
fn program_name(id: u32) -> String {
    // SAFETY: plain syscall wrapper.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
    if fd < 0 {
        return String::new();
    }
    // SAFETY: the information block is plain data, all-zero before the kernel fills it.
    let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // SAFETY: `info` is a writable bpf_prog_info of `len` bytes; `fd` is a program's.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    if rc != 0 {
        return String::new();
    }
    let bytes: Vec<u8> = info
        .name
        .iter()
        .map(|&c| c as u8)
        .take_while(|&c| c != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Detaches what `replace` allows from `ifindex` before our program is attached: a program
/// attached with a netdev flag (which outlives its process) that is ours (same name, so left
/// by an xvsd that did not stop), or any such program with [`Replace::Any`]. A program held by
/// a live BPF link belongs to a running process and is never touched.
fn clear_the_way(
    ifindex: i32,
    ifname: &str,
    ours: &CStr,
    replace: Replace,
) -> Result<(), BpfError> {
    let ours = ours.to_string_lossy();
    for flags in [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE] {
        let mut id = 0u32;
        // SAFETY: `id` is a writable u32.
        let rc = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex, flags as i32, &mut id) };
        if rc != 0 || id == 0 {
            continue;
        }
        let name = program_name(id);
        let mine = name == ours;
        if !mine && replace == Replace::OursOnly {
            return Err(BpfError {
                what: format!(
                    "{ifname} already has an XDP program ({name:?}, id {id}) that is not xvs's; \
                     remove it, or start with --force to replace it"
                ),
                err: io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        // SAFETY: detaching by interface index and mode; refused (EBUSY) for a link.
        let rc = unsafe { libbpf_sys::bpf_xdp_detach(ifindex, flags, std::ptr::null()) };
        if rc == -libc::EBUSY {
            return Err(BpfError {
                what: format!(
                    "{ifname} is served by a running program ({name:?}, id {id}, held by a BPF \
                     link: another xvsd?)"
                ),
                err: io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        if rc != 0 {
            return Err(err(
                format!("removing the XDP program left on {ifname}"),
                rc,
            ));
        }
        if mine {
            tracing::warn!(interface = ifname, program = %name, id,
                "replaced a stale xvs XDP program (left by an xvsd that did not stop cleanly)");
        } else {
            tracing::warn!(interface = ifname, program = %name, id,
                "replaced another XDP program (--force)");
        }
    }
    Ok(())
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
