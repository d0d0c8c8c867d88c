//! Flags of `open(2)` that std has no name for, where their value is the
//! generic Linux one (x86-64 and AArch64), given as constants so that no
//! `libc` is needed outside `serve` (the plain-HTTP build keeps httparse
//! as its only dependency). Elsewhere they are 0: the open goes on as
//! std's, without the guard.

pub use values::{O_NOFOLLOW, O_NONBLOCK};

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod values {
    /// Do not follow a symbolic link in the last component.
    pub const O_NOFOLLOW: i32 = 0o400000;
    /// Never wait in `open` (a named pipe with no writer).
    pub const O_NONBLOCK: i32 = 0o4000;
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod values {
    /// Do not follow a symbolic link in the last component.
    pub const O_NOFOLLOW: i32 = 0;
    /// Never wait in `open` (a named pipe with no writer).
    pub const O_NONBLOCK: i32 = 0;
}

#[cfg(all(test, feature = "serve", target_os = "linux"))]
mod tests {
    #[test]
    fn the_values_are_the_systems() {
        assert_eq!(super::O_NOFOLLOW, libc::O_NOFOLLOW);
        assert_eq!(super::O_NONBLOCK, libc::O_NONBLOCK);
    }
}
