//! The XDP steering program: loaded from the object compiled at build time, attached to an
//! interface (native mode with automatic fallback to generic/SKB mode, or as configured), its
//! maps kept in step with the services, and detached when dropped.

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::c_void;

/// The compiled steering program.
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.o"));

const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
const XDP_FLAGS_SKB_MODE: u32 = 2;
const XDP_FLAGS_DRV_MODE: u32 = 4;

/// How to attach the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic mode if the driver refuses.
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

/// Key of `vip_map` and `rip_map`: address (16-byte form), port (host order), protocol.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SvcKey {
    /// Address, IPv4 in IPv4-mapped form.
    pub addr: [u8; 16],
    /// Port (0 = any).
    pub port: u16,
    /// IP protocol.
    pub proto: u8,
    /// Padding, zero.
    pub pad: u8,
}

/// The maps the program steers by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringSets {
    /// Virtual services (and (VIP, 0, ICMP) for ICMP to a VIP).
    pub vips: HashSet<SvcKey>,
    /// NAT real servers (and (RIP, 0, ICMP)).
    pub rips: HashSet<SvcKey>,
    /// FullNAT local addresses.
    pub laddrs: HashSet<[u8; 16]>,
    /// The director's own addresses.
    pub locals: HashSet<[u8; 16]>,
}

/// Why the program could not be loaded or attached.
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
                    " (run xvsd as root, or with CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN)"
                )
            }
            Some(libc::EBUSY) | Some(libc::EEXIST) => write!(
                f,
                " (another XDP program is attached; remove it with `ip link set dev IF xdp off`)"
            ),
            Some(libc::EOPNOTSUPP) => {
                write!(f, " (the driver has no native XDP; use --xdp-mode generic)")
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for BpfError {}

fn err(what: impl Into<String>, code: i32) -> BpfError {
    BpfError {
        what: what.into(),
        err: io::Error::from_raw_os_error(code.abs()),
    }
}

/// The steering program, loaded and attached to one interface.
#[derive(Debug)]
pub struct Steering {
    obj: *mut libbpf_sys::bpf_object,
    ifindex: i32,
    ifname: String,
    attach_flags: u32,
    mode: XdpMode,
    xsks_fd: i32,
    vip_fd: i32,
    rip_fd: i32,
    laddr_fd: i32,
    local_fd: i32,
    stats_fd: i32,
    current: SteeringSets,
}

// SAFETY: the libbpf object is only used through `&mut self` (or `&self` for read-only map
// lookups, which libbpf performs with plain syscalls on file descriptors); nothing in it is
// tied to the creating thread.
unsafe impl Send for Steering {}

fn map_fd(obj: *mut libbpf_sys::bpf_object, name: &CStr) -> Result<i32, BpfError> {
    // SAFETY: `obj` is a loaded object owned by the caller; `name` is NUL-terminated.
    let fd = unsafe { libbpf_sys::bpf_object__find_map_fd_by_name(obj, name.as_ptr()) };
    if fd < 0 {
        return Err(err(format!("steering program has no map {name:?}"), fd));
    }
    Ok(fd)
}

impl Steering {
    /// Loads the program and attaches it to `ifname` in `mode`.
    pub fn attach(ifname: &str, mode: XdpMode) -> Result<Steering, BpfError> {
        let cname = CString::new(ifname).map_err(|_| err("interface name", libc::EINVAL))?;
        // SAFETY: `cname` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(BpfError {
                what: format!("interface {ifname} does not exist"),
                err: io::Error::last_os_error(),
            });
        }
        let name = CString::new("xvs_steer").map_err(|_| err("object name", libc::EINVAL))?;
        // SAFETY: OBJECT is a static byte slice that outlives the object (libbpf copies what it
        // needs); a null opts pointer selects defaults.
        let obj = unsafe {
            libbpf_sys::bpf_object__open_mem(
                OBJECT.as_ptr().cast::<c_void>(),
                OBJECT.len() as u64,
                std::ptr::null(),
            )
        };
        if obj.is_null() {
            return Err(BpfError {
                what: "opening the steering program".into(),
                err: io::Error::last_os_error(),
            });
        }
        let mut s = Steering {
            obj,
            ifindex,
            ifname: ifname.into(),
            attach_flags: 0,
            mode,
            xsks_fd: -1,
            vip_fd: -1,
            rip_fd: -1,
            laddr_fd: -1,
            local_fd: -1,
            stats_fd: -1,
            current: SteeringSets::default(),
        };
        // SAFETY: `obj` was opened above and is not loaded yet.
        let rc = unsafe { libbpf_sys::bpf_object__load(obj) };
        if rc != 0 {
            return Err(err(
                format!("loading the steering program for {ifname}"),
                rc,
            ));
        }
        // SAFETY: `obj` is loaded; the name is NUL-terminated.
        let prog = unsafe { libbpf_sys::bpf_object__find_program_by_name(obj, name.as_ptr()) };
        if prog.is_null() {
            return Err(err("steering program has no xvs_steer", libc::ENOENT));
        }
        // SAFETY: `prog` belongs to the loaded object.
        let prog_fd = unsafe { libbpf_sys::bpf_program__fd(prog) };
        s.xsks_fd = map_fd(obj, c"xsks_map")?;
        s.vip_fd = map_fd(obj, c"vip_map")?;
        s.rip_fd = map_fd(obj, c"rip_map")?;
        s.laddr_fd = map_fd(obj, c"laddr_map")?;
        s.local_fd = map_fd(obj, c"local_map")?;
        s.stats_fd = map_fd(obj, c"steer_stats")?;
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
            return Err(err(format!("attaching XDP to {ifname}"), rc));
        }
        s.attach_flags = flags;
        Ok(s)
    }

    /// The interface index.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The mode the program was attached in ("native" or "generic").
    pub fn mode_name(&self) -> &'static str {
        if self.attach_flags == XDP_FLAGS_DRV_MODE {
            "native"
        } else {
            "generic"
        }
    }

    /// True if attached in native (driver) mode.
    pub fn is_native(&self) -> bool {
        self.attach_flags == XDP_FLAGS_DRV_MODE
    }

    /// The configured mode.
    pub fn requested_mode(&self) -> XdpMode {
        self.mode
    }

    /// Points queue `queue` at the AF_XDP socket `xsk_fd`.
    pub fn register_socket(&mut self, queue: u32, xsk_fd: i32) -> Result<(), BpfError> {
        update(self.xsks_fd, &queue, &xsk_fd).map_err(|e| BpfError {
            what: format!(
                "registering the AF_XDP socket of {} queue {queue}",
                self.ifname
            ),
            err: e,
        })
    }

    /// Brings the maps in line with `want` (inserting and deleting the difference).
    pub fn sync(&mut self, want: &SteeringSets) -> Result<(), BpfError> {
        let one = 1u32;
        let map_err = |e: io::Error| BpfError {
            what: "updating the steering maps".into(),
            err: e,
        };
        sync_set(self.vip_fd, &self.current.vips, &want.vips, &one).map_err(map_err)?;
        sync_set(self.rip_fd, &self.current.rips, &want.rips, &one).map_err(map_err)?;
        sync_set(self.laddr_fd, &self.current.laddrs, &want.laddrs, &one).map_err(map_err)?;
        sync_set(self.local_fd, &self.current.locals, &want.locals, &one).map_err(map_err)?;
        self.current = want.clone();
        Ok(())
    }

    /// Packets steered so far, by rule: to a service, to a local address, from a real server.
    pub fn steered(&self) -> [u64; 3] {
        // SAFETY: no preconditions.
        let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() }.max(1) as usize;
        let mut out = [0u64; 3];
        let mut vals = vec![0u64; cpus];
        for (rule, o) in out.iter_mut().enumerate() {
            let key = rule as u32;
            // SAFETY: `vals` holds one u64 per possible CPU, the size of a per-CPU array value.
            let rc = unsafe {
                libbpf_sys::bpf_map_lookup_elem(
                    self.stats_fd,
                    (&raw const key).cast::<c_void>(),
                    vals.as_mut_ptr().cast::<c_void>(),
                )
            };
            if rc == 0 {
                *o = vals.iter().sum();
            }
        }
        out
    }
}

fn update<K, V>(fd: i32, key: &K, value: &V) -> io::Result<()> {
    // SAFETY: key and value point to initialised values of the map's key and value sizes
    // (the callers pass the `#[repr(C)]` types the program declares).
    let rc = unsafe {
        libbpf_sys::bpf_map_update_elem(
            fd,
            (key as *const K).cast::<c_void>(),
            (value as *const V).cast::<c_void>(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    Ok(())
}

fn sync_set<K: Eq + std::hash::Hash>(
    fd: i32,
    have: &HashSet<K>,
    want: &HashSet<K>,
    value: &u32,
) -> io::Result<()> {
    for k in want.difference(have) {
        update(fd, k, value)?;
    }
    for k in have.difference(want) {
        // SAFETY: `k` points to an initialised key of the map's key size.
        let rc = unsafe { libbpf_sys::bpf_map_delete_elem(fd, (k as *const K).cast::<c_void>()) };
        if rc != 0 && rc != -libc::ENOENT {
            return Err(io::Error::from_raw_os_error(-rc));
        }
    }
    Ok(())
}

impl Drop for Steering {
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

/// Detaches whatever XDP program is attached to `ifname` (both modes). For cleaning up after a
/// crash; xvsd detaches its own program on exit.
pub fn detach_any(ifname: &str) -> io::Result<()> {
    let cname = CString::new(ifname).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `cname` is NUL-terminated.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
    if ifindex == 0 {
        return Err(io::Error::last_os_error());
    }
    for flags in [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE] {
        // SAFETY: plain syscall wrapper.
        unsafe { libbpf_sys::bpf_xdp_detach(ifindex, flags, std::ptr::null()) };
    }
    Ok(())
}
