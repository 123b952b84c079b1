//! The shape every header view shares: a struct over a byte buffer, constructors that check it
//! with the view's own `check_len`, and plain big-endian fields at fixed offsets, declared once
//! here and used by every header module.

/// Declares a view `$name<T> { buffer: T }` with `new_unchecked` and `new_checked` (which calls
/// the view's own `check_len`).
macro_rules! view {
    ($(#[$doc:meta])* pub struct $name:ident;) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<T> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// Wraps a buffer without checking it.
            #[inline]
            pub const fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps a buffer and checks it (see `check_len`).
            #[inline]
            pub fn new_checked(buffer: T) -> $crate::Result<Self> {
                let p = Self::new_unchecked(buffer);
                p.check_len()?;
                Ok(p)
            }
        }
    };
}

/// Fields stored big-endian at fixed offsets of a view: each a getter (in the view's read
/// impl) and optionally a setter (in its write impl), written
/// `/// doc getter / /// doc setter: type = offset;`.
macro_rules! fields {
    ($name:ident {
        $( $(#[$gdoc:meta])* $get:ident $(/ $(#[$sdoc:meta])* $set:ident)? : $ty:ty = $at:expr; )*
    }) => {
        impl<T: AsRef<[u8]>> $name<T> {
            $(
                $(#[$gdoc])*
                #[inline]
                pub fn $get(&self) -> $ty {
                    <$ty as $crate::view::Field>::read(self.buffer.as_ref(), $at)
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            $($(
                $(#[$sdoc])*
                #[inline]
                pub fn $set(&mut self, v: $ty) {
                    <$ty as $crate::view::Field>::write(self.buffer.as_mut(), $at, v)
                }
            )?)*
        }
    };
}

pub(crate) use {fields, view};

/// An unsigned integer stored big-endian in a header.
pub(crate) trait Field: Sized {
    /// Reads it at `at`.
    fn read(b: &[u8], at: usize) -> Self;
    /// Writes it at `at`.
    fn write(b: &mut [u8], at: usize, v: Self);
}

impl Field for u8 {
    #[inline(always)]
    fn read(b: &[u8], at: usize) -> u8 {
        b[at]
    }
    #[inline(always)]
    fn write(b: &mut [u8], at: usize, v: u8) {
        b[at] = v;
    }
}

impl Field for u16 {
    #[inline(always)]
    fn read(b: &[u8], at: usize) -> u16 {
        crate::be16(b, at)
    }
    #[inline(always)]
    fn write(b: &mut [u8], at: usize, v: u16) {
        crate::put16(b, at, v);
    }
}

impl Field for u32 {
    #[inline(always)]
    fn read(b: &[u8], at: usize) -> u32 {
        crate::be32(b, at)
    }
    #[inline(always)]
    fn write(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::Field;

    #[test]
    fn fields_are_big_endian_at_their_offset() {
        let mut b = [0u8; 8];
        u16::write(&mut b, 1, 0x1234);
        u32::write(&mut b, 3, 0xdead_beef);
        u8::write(&mut b, 7, 9);
        assert_eq!(b, [0, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 9]);
        assert_eq!(
            (u16::read(&b, 1), u32::read(&b, 3), u8::read(&b, 7)),
            (0x1234, 0xdead_beef, 9)
        );
    }
}
