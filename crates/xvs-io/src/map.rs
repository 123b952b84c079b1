//! A map of a loaded BPF program, with the key and value sizes the program declared, so that
//! what is handed to the kernel is checked against them: a key or value of another size is an
//! error, never a read or write past a Rust value.

use std::ffi::CStr;
use std::io;
use std::mem::size_of;
use std::os::raw::c_void;

/// One map: its descriptor (owned by the program's object) and its declared sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Map {
    fd: i32,
    key_size: usize,
    value_size: usize,
}

impl Map {
    /// The map `name` of the loaded object `obj`, if it has one.
    ///
    /// # Safety
    /// `obj` must be a loaded `bpf_object` that outlives every use of the returned map.
    pub(crate) unsafe fn of(obj: *mut libbpf_sys::bpf_object, name: &CStr) -> Option<Map> {
        // SAFETY: `obj` is loaded (the caller's promise); `name` is NUL-terminated.
        let m = unsafe { libbpf_sys::bpf_object__find_map_by_name(obj, name.as_ptr()) };
        if m.is_null() {
            return None;
        }
        // SAFETY: `m` is a map of the loaded object.
        let fd = unsafe { libbpf_sys::bpf_map__fd(m) };
        // SAFETY: as above.
        let key_size = unsafe { libbpf_sys::bpf_map__key_size(m) };
        // SAFETY: as above.
        let value_size = unsafe { libbpf_sys::bpf_map__value_size(m) };
        (fd >= 0).then_some(Map {
            fd,
            key_size: key_size as usize,
            value_size: value_size as usize,
        })
    }

    /// The descriptor (for mmap and for the kernel's own map types).
    pub(crate) fn fd(self) -> i32 {
        self.fd
    }

    fn check<K, V>(self) -> io::Result<()> {
        if size_of::<K>() != self.key_size || size_of::<V>() != self.value_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "map entry of {}+{} bytes given for a map of {}+{}",
                    size_of::<K>(),
                    size_of::<V>(),
                    self.key_size,
                    self.value_size
                ),
            ));
        }
        Ok(())
    }

    /// Sets `key` to `value`.
    pub(crate) fn update<K: Copy, V: Copy>(self, key: &K, value: &V) -> io::Result<()> {
        self.check::<K, V>()?;
        // SAFETY: key and value point to initialised plain values of exactly the map's key
        // and value sizes (checked above).
        let rc = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.fd,
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

    /// Removes `key` (a key that is not there is no error).
    pub(crate) fn delete<K: Copy>(self, key: &K) -> io::Result<()> {
        if size_of::<K>() != self.key_size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "key of {} bytes given for a map of {}-byte keys",
                    size_of::<K>(),
                    self.key_size
                ),
            ));
        }
        // SAFETY: `key` points to an initialised plain value of the map's key size (checked).
        let rc = unsafe { libbpf_sys::bpf_map_delete_elem(self.fd, (key as *const K).cast()) };
        if rc != 0 && rc != -libc::ENOENT {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }

    /// The sum over CPUs of entry `key` of this per-CPU array of `u64` (0 if unreadable or
    /// not such a map).
    pub(crate) fn percpu_sum(self, key: u32) -> u64 {
        if self.check::<u32, u64>().is_err() {
            return 0;
        }
        // SAFETY: no preconditions.
        let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() }.max(1) as usize;
        let mut vals = vec![0u64; cpus];
        // SAFETY: the key is a u32 and `vals` holds one u64 per possible CPU: the key size and
        // the per-CPU value size of this map (checked above).
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_elem(
                self.fd,
                (&raw const key).cast::<c_void>(),
                vals.as_mut_ptr().cast::<c_void>(),
            )
        };
        if rc == 0 { vals.iter().sum() } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_of_the_wrong_size_are_refused_before_the_kernel_sees_them() {
        // No such descriptor: a call that got past the size check would fail with EBADF.
        let m = Map {
            fd: -1,
            key_size: 4,
            value_size: 4,
        };
        for e in [
            m.update(&0u64, &0u32).unwrap_err(),
            m.update(&0u32, &[0u8; 8]).unwrap_err(),
            m.delete(&0u16).unwrap_err(),
        ] {
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        }
        assert_eq!(
            m.update(&0u32, &0u32).unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
        assert_eq!(m.percpu_sum(0), 0, "not a per-CPU array of u64");
    }
}
