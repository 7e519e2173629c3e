//! The environment variables the host gives the Wasm VM. Envoy passes
//! `vm_config.environment_variables` (`key_values` and `host_env_keys`) to
//! the module only through WASI's `environ_sizes_get` and `environ_get`.
//! The modules are built for wasm32-unknown-unknown, whose `std::env` has no
//! environment, so the two functions are imported here by hand.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

/// Variable names to values.
pub type Environment = BTreeMap<String, String>;

const ENOTCAPABLE: i32 = 76;

/// A WASI call that failed, with the errno it returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvironmentError {
    pub call: &'static str,
    pub errno: i32,
}

impl fmt::Display for EnvironmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WASI {} failed with errno {}", self.call, self.errno)?;
        // proxy-wasm-cpp-host answers ENOTCAPABLE for a restricted capability.
        if self.errno == ENOTCAPABLE {
            write!(f, "; allow it in the VM's capability_restriction_config")?;
        }
        Ok(())
    }
}

/// The VM's environment, read from the host on the first call. The host
/// fixes it when it creates the VM, so later calls reuse that reading.
pub fn environment() -> Result<&'static Environment, EnvironmentError> {
    static ENVIRONMENT: OnceLock<Result<Environment, EnvironmentError>> = OnceLock::new();
    ENVIRONMENT.get_or_init(read).as_ref().map_err(|e| *e)
}

/// Parses WASI's environment buffer: `NAME=VALUE` entries, each ending in
/// NUL. As with POSIX `getenv`, the first entry for a name wins and an entry
/// without `=` names no variable. Bytes that are not UTF-8 are replaced, and
/// a last entry without its NUL still counts.
pub fn parse_environ(buf: &[u8]) -> Environment {
    let mut environment = Environment::new();
    for entry in buf.split(|&b| b == 0).filter(|entry| !entry.is_empty()) {
        let entry = String::from_utf8_lossy(entry);
        if let Some((name, value)) = entry.split_once('=') {
            environment.entry(name.to_owned()).or_insert_with(|| value.to_owned());
        }
    }
    environment
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn read() -> Result<Environment, EnvironmentError> {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    extern "C" {
        fn environ_sizes_get(count: *mut usize, buf_size: *mut usize) -> i32;
        fn environ_get(environ: *mut *mut u8, environ_buf: *mut u8) -> i32;
    }
    let check = |call, errno| if errno == 0 { Ok(()) } else { Err(EnvironmentError { call, errno }) };

    let (mut count, mut buf_size) = (0, 0);
    // SAFETY: both pointers are to live, writable usizes (wasm32's pointer size,
    // the host's word size).
    check("environ_sizes_get", unsafe { environ_sizes_get(&mut count, &mut buf_size) })?;
    // The host writes a pointer to each entry as well; the entries are
    // contiguous in `buf`, so parsing needs only `buf`.
    let mut pointers = vec![std::ptr::null_mut::<u8>(); count];
    let mut buf = vec![0u8; buf_size];
    // SAFETY: the host writes `count` pointers and `buf_size` bytes, the sizes
    // it reported just now, and both buffers have exactly that room.
    check("environ_get", unsafe { environ_get(pointers.as_mut_ptr(), buf.as_mut_ptr()) })?;
    Ok(parse_environ(&buf))
}

/// Elsewhere (host builds, WASI targets) std reads the environment.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn read() -> Result<Environment, EnvironmentError> {
    Ok(std::env::vars_os()
        .map(|(name, value)| (name.to_string_lossy().into_owned(), value.to_string_lossy().into_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn empty_buffer_has_no_variables() {
        assert_eq!(parse_environ(b""), Environment::new());
    }

    #[test]
    fn entries_end_in_nul() {
        assert_eq!(parse_environ(b"GREETING=hello\0HOME=/root\0"), env(&[("GREETING", "hello"), ("HOME", "/root")]));
    }

    #[test]
    fn values_may_be_empty_or_hold_equals_signs() {
        assert_eq!(parse_environ(b"EMPTY=\0EXPR=a=b=c\0"), env(&[("EMPTY", ""), ("EXPR", "a=b=c")]));
    }

    #[test]
    fn first_entry_for_a_name_wins() {
        assert_eq!(parse_environ(b"A=1\0A=2\0"), env(&[("A", "1")]));
    }

    #[test]
    fn entries_without_equals_are_skipped() {
        assert_eq!(parse_environ(b"JUNK\0A=1\0\0"), env(&[("A", "1")]));
    }

    #[test]
    fn last_entry_may_lack_its_nul() {
        assert_eq!(parse_environ(b"A=1\0B=2"), env(&[("A", "1"), ("B", "2")]));
    }

    #[test]
    fn names_keep_their_case() {
        assert_eq!(parse_environ(b"home=a\0HOME=b\0"), env(&[("HOME", "b"), ("home", "a")]));
    }

    #[test]
    fn restricted_capability_error_says_what_to_allow() {
        let e = EnvironmentError { call: "environ_get", errno: ENOTCAPABLE };
        assert_eq!(
            e.to_string(),
            "WASI environ_get failed with errno 76; allow it in the VM's capability_restriction_config"
        );
        assert_eq!(
            EnvironmentError { call: "environ_get", errno: 21 }.to_string(),
            "WASI environ_get failed with errno 21"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(parse_environ(b"A=\xff\0"), env(&[("A", "\u{fffd}")]));
    }
}
