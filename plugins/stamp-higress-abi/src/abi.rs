//! The proxy-wasm ABI, by hand: the Higress marker, the host calls this
//! module makes and the callbacks it exports (names and signatures as in the
//! proxy-wasm 0.2 crate's src/hostcalls.rs and src/dispatcher.rs). Callbacks
//! it does not export (request headers, bodies, ...) the host skips.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::Config;

const LOG_INFO: u32 = 2;
const LOG_ERROR: u32 = 4;
const STATUS_OK: u32 = 0;
const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;
const MAP_HTTP_RESPONSE_HEADERS: u32 = 2;
const ACTION_CONTINUE: u32 = 0;

// The host's functions live in the import module "env".
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// The whole point of this module: Higress's ABI marker, in place of the
/// standard `proxy_abi_version_0_2_1`. The host picks the ABI by which of
/// these empty functions the module exports.
#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_100() {}

/// Memory the host copies its answers into (during `proxy_get_buffer_bytes`).
/// A boxed slice of exactly `size` bytes, so `take` can rebuild it.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    Box::into_raw(vec![0u8; size].into_boxed_slice()).cast()
}

/// Takes back a buffer the host filled: `data` came from
/// `proxy_on_memory_allocate(size)` (the host returns the size it asked for).
///
/// # Safety
/// `data` and `size` must be what the host returned from a host call that
/// allocated through `proxy_on_memory_allocate`.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, size)).into_vec()
}

fn log(level: u32, message: &str) {
    // SAFETY: the host reads `message` during the call only.
    unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

fn plugin_configuration(size: usize) -> Option<Vec<u8>> {
    if size == 0 {
        return Some(Vec::new());
    }
    let (mut data, mut len) = (std::ptr::null_mut(), 0);
    // SAFETY: the out-parameters are valid for the call; the buffer the host
    // returns is ours (allocated through proxy_on_memory_allocate).
    unsafe {
        if proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &mut data, &mut len) != STATUS_OK {
            return None;
        }
        Some(take(data, len))
    }
}

fn add_response_header(name: &str, value: &str) -> bool {
    // SAFETY: the host reads both strings during the call only.
    unsafe {
        proxy_add_header_map_value(MAP_HTTP_RESPONSE_HEADERS, name.as_ptr(), name.len(), value.as_ptr(), value.len())
            == STATUS_OK
    }
}

/// The VM's state: one thread, no locking needed.
#[derive(Default)]
struct State {
    /// Each root context's accepted configuration.
    configs: HashMap<u32, Rc<Config>>,
    /// Each HTTP stream's configuration, from its root context.
    streams: HashMap<u32, Rc<Config>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

/// Called with parent 0 for a root context, with the root's id for a stream.
#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    STATE.with_borrow_mut(|state| {
        if let Some(config) = state.configs.get(&parent_id).cloned() {
            state.streams.insert(context_id, config);
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> bool {
    true
}

/// Rejects (false) a configuration that does not parse: Envoy then refuses
/// the plugin, as with `stamp`.
#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, plugin_configuration_size: usize) -> bool {
    let Some(bytes) = plugin_configuration(plugin_configuration_size) else {
        log(LOG_ERROR, "stamp higress-abi: cannot read the plugin configuration");
        return false;
    };
    match Config::parse(&bytes) {
        Ok(config) => {
            log(LOG_INFO, &format!("stamp higress-abi (ABI 0.2.100): name {:?}", config.name));
            STATE.with_borrow_mut(|state| state.configs.insert(root_id, Rc::new(config)));
            true
        }
        Err(e) => {
            log(LOG_ERROR, &format!("stamp higress-abi: bad configuration: {e}"));
            false
        }
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(context_id: u32, _num_headers: usize, _end_of_stream: bool) -> u32 {
    if let Some(config) = STATE.with_borrow(|state| state.streams.get(&context_id).cloned()) {
        for (name, value) in config.response_headers() {
            if !add_response_header(name, value) {
                log(LOG_ERROR, &format!("stamp higress-abi: cannot add {name}"));
            }
        }
    }
    ACTION_CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_done(_context_id: u32) -> bool {
    true
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    STATE.with_borrow_mut(|state| {
        state.streams.remove(&context_id);
        state.configs.remove(&context_id);
    });
}
