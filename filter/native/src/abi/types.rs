//! The ABI's structs (`abi.h`'s `envoy_dynamic_module_type_*` buffers and headers), laid out as C
//! lays them out.

use std::ptr::null;

/// `envoy_dynamic_module_type_envoy_buffer`: bytes owned by Envoy.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyBuffer {
    pub ptr: *const u8,
    pub length: usize,
}

impl EnvoyBuffer {
    pub(super) const EMPTY: EnvoyBuffer = EnvoyBuffer {
        ptr: null(),
        length: 0,
    };

    /// The bytes, copied.
    ///
    /// # Safety
    /// `ptr` must point at `length` readable bytes (or be null).
    pub unsafe fn to_vec(self) -> Vec<u8> {
        self.as_slice().to_vec()
    }

    /// The bytes, borrowed for as long as the caller says Envoy keeps them.
    ///
    /// # Safety
    /// `ptr` must point at `length` readable bytes (or be null) for all of `'a`.
    pub unsafe fn as_slice<'a>(self) -> &'a [u8] {
        if self.ptr.is_null() || self.length == 0 {
            return &[];
        }
        // SAFETY: the caller promises `length` readable bytes at `ptr` for `'a`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.length) }
    }
}

/// `envoy_dynamic_module_type_module_buffer`: bytes owned by this module, lent for one call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ModuleBuffer {
    pub(super) ptr: *const u8,
    pub(super) length: usize,
}

impl ModuleBuffer {
    pub(super) fn of(bytes: &[u8]) -> Self {
        ModuleBuffer {
            ptr: bytes.as_ptr(),
            length: bytes.len(),
        }
    }

    /// The null buffer (a header value meaning "remove").
    pub(super) const NULL: ModuleBuffer = ModuleBuffer {
        ptr: null(),
        length: 0,
    };
}

/// `envoy_dynamic_module_type_envoy_http_header`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EnvoyHeader {
    pub key_ptr: *const u8,
    pub key_length: usize,
    pub value_ptr: *const u8,
    pub value_length: usize,
}

impl EnvoyHeader {
    pub(super) const EMPTY: EnvoyHeader = EnvoyHeader {
        key_ptr: null(),
        key_length: 0,
        value_ptr: null(),
        value_length: 0,
    };
}

/// `envoy_dynamic_module_type_module_http_header`.
#[repr(C)]
pub(super) struct ModuleHeader {
    key_ptr: *const u8,
    key_length: usize,
    value_ptr: *const u8,
    value_length: usize,
}

pub(super) fn module_headers(headers: &[(&str, &str)]) -> Vec<ModuleHeader> {
    headers
        .iter()
        .map(|(k, v)| ModuleHeader {
            key_ptr: k.as_ptr(),
            key_length: k.len(),
            value_ptr: v.as_ptr(),
            value_length: v.len(),
        })
        .collect()
}
