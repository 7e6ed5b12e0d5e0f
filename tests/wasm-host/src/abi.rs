//! The proxy-wasm 0.2.1 host functions the filter imports, implemented over [`HostState`].

use anyhow::Result;
use wasmtime::{Caller, Linker};

use crate::{give, read, HostState, LocalReply};

const OK: i32 = 0;
const NOT_FOUND: i32 = 1;
const BAD_ARGUMENT: i32 = 2;
const CAS_MISMATCH: i32 = 8;

fn headers_mut(s: &mut HostState, map: i32) -> Option<&mut Vec<(String, String)>> {
    match map {
        0 => Some(&mut s.request_headers),
        2 => Some(&mut s.response_headers),
        6 => Some(&mut s.call_response_headers),
        _ => None,
    }
}

fn body_mut(s: &mut HostState, kind: i32) -> Option<&mut Vec<u8>> {
    match kind {
        0 => Some(&mut s.request_body),
        1 => Some(&mut s.response_body),
        4 => Some(&mut s.call_response_body),
        _ => None,
    }
}

/// Parses proxy-wasm's serialized header map.
pub(crate) fn parse_map(bytes: &[u8]) -> Vec<(String, String)> {
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let n = u32_at(0);
    let mut sizes = Vec::new();
    for i in 0..n {
        sizes.push((u32_at(4 + 8 * i), u32_at(8 + 8 * i)));
    }
    let mut pos = 4 + 8 * n;
    let mut out = Vec::new();
    for (k, v) in sizes {
        let key = String::from_utf8_lossy(bytes.get(pos..pos + k).unwrap_or(&[])).into_owned();
        pos += k + 1;
        let val = String::from_utf8_lossy(bytes.get(pos..pos + v).unwrap_or(&[])).into_owned();
        pos += v + 1;
        out.push((key, val));
    }
    out
}

/// Serializes a header map the way proxy-wasm hosts hand it over.
fn serialize_map(headers: &[(String, String)]) -> Vec<u8> {
    let mut out = (headers.len() as u32).to_le_bytes().to_vec();
    for (k, v) in headers {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in headers {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            c.data_mut().called("proxy_log");
            let msg = String::from_utf8_lossy(&read(&mut c, ptr, len)?).into_owned();
            c.data_mut().logs.push((level as u32, msg));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: Caller<'_, HostState>, out: i32| -> Result<i32> {
            c.data_mut().called("proxy_get_log_level");
            let m = crate::memory(&mut c)?;
            m.write(&mut c, out as usize, &0i32.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Caller<'_, HostState>,
         ptr: i32,
         len: i32,
         out_ptr: i32,
         out_len: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_get_property");
            let path = String::from_utf8_lossy(&read(&mut c, ptr, len)?).replace('\0', ".");
            match c.data().properties.get(&path).cloned() {
                Some(v) => {
                    give(&mut c, &v, out_ptr, out_len)?;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>,
         kind: i32,
         start: i32,
         max: i32,
         out_ptr: i32,
         out_len: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_get_buffer_bytes");
            let data = if kind == 7 {
                c.data().plugin_config.clone()
            } else {
                match body_mut(c.data_mut(), kind) {
                    Some(b) => b.clone(),
                    None => return Ok(BAD_ARGUMENT),
                }
            };
            let start = start as usize;
            let end = (start + max as usize).min(data.len());
            let slice = data.get(start..end).unwrap_or(&[]).to_vec();
            give(&mut c, &slice, out_ptr, out_len)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, HostState>,
         kind: i32,
         start: i32,
         size: i32,
         ptr: i32,
         len: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_set_buffer_bytes");
            let data = read(&mut c, ptr, len)?;
            let Some(body) = body_mut(c.data_mut(), kind) else {
                return Ok(BAD_ARGUMENT);
            };
            let start = (start as usize).min(body.len());
            let end = (start + size as usize).min(body.len());
            body.splice(start..end, data);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>,
         map: i32,
         kptr: i32,
         klen: i32,
         out_ptr: i32,
         out_len: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_get_header_map_value");
            let key = String::from_utf8_lossy(&read(&mut c, kptr, klen)?).to_ascii_lowercase();
            let Some(h) = headers_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            match h
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v.clone())
            {
                Some(v) => {
                    give(&mut c, v.as_bytes(), out_ptr, out_len)?;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, HostState>, map: i32, out_ptr: i32, out_len: i32| -> Result<i32> {
            c.data_mut().called("proxy_get_header_map_pairs");
            let Some(h) = headers_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            let bytes = serialize_map(h);
            give(&mut c, &bytes, out_ptr, out_len)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Caller<'_, HostState>,
         map: i32,
         kptr: i32,
         klen: i32,
         vptr: i32,
         vlen: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_replace_header_map_value");
            let key = String::from_utf8_lossy(&read(&mut c, kptr, klen)?).to_ascii_lowercase();
            let val = String::from_utf8_lossy(&read(&mut c, vptr, vlen)?).into_owned();
            let Some(h) = headers_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            h.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            h.push((key, val));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kptr: i32, klen: i32| -> Result<i32> {
            c.data_mut().called("proxy_remove_header_map_value");
            let key = String::from_utf8_lossy(&read(&mut c, kptr, klen)?).into_owned();
            let Some(h) = headers_mut(c.data_mut(), map) else {
                return Ok(BAD_ARGUMENT);
            };
            h.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>,
         status: i32,
         _dptr: i32,
         _dlen: i32,
         bptr: i32,
         blen: i32,
         hptr: i32,
         hlen: i32,
         _grpc: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_send_local_response");
            let body = read(&mut c, bptr, blen)?;
            let headers = parse_map(&read(&mut c, hptr, hlen)?);
            c.data_mut().local_reply = Some(LocalReply {
                status: status as u32,
                headers,
                body,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Caller<'_, HostState>, _kind: i32, nptr: i32, nlen: i32, out: i32| -> Result<i32> {
            c.data_mut().called("proxy_define_metric");
            let name = String::from_utf8_lossy(&read(&mut c, nptr, nlen)?).into_owned();
            let id = c.data().metrics.len() as u32;
            c.data_mut().metrics.push((name, 0));
            let m = crate::memory(&mut c)?;
            m.write(&mut c, out as usize, &id.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: Caller<'_, HostState>, id: i32, by: i64| -> Result<i32> {
            c.data_mut().called("proxy_increment_metric");
            match c.data_mut().metrics.get_mut(id as usize) {
                Some((_, v)) => {
                    *v = v.saturating_add_signed(by);
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: Caller<'_, HostState>, id: i32, value: i64| -> Result<i32> {
            c.data_mut().called("proxy_record_metric");
            match c.data_mut().metrics.get_mut(id as usize) {
                Some((_, v)) => {
                    // A histogram keeps its last value here: enough to see what was recorded.
                    *v = value as u64;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Caller<'_, HostState>, id: i32, out: i32| -> Result<i32> {
            c.data_mut().called("proxy_get_metric");
            let Some((_, v)) = c.data().metrics.get(id as usize).cloned() else {
                return Ok(NOT_FOUND);
            };
            let m = crate::memory(&mut c)?;
            m.write(&mut c, out as usize, &v.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Caller<'_, HostState>, out: i32| -> Result<i32> {
            c.data_mut().called("proxy_get_current_time_nanoseconds");
            let now = c.data().now_nanos;
            let m = crate::memory(&mut c)?;
            m.write(&mut c, out as usize, &now.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Caller<'_, HostState>,
         kptr: i32,
         klen: i32,
         out_ptr: i32,
         out_len: i32,
         out_cas: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_get_shared_data");
            let key = String::from_utf8_lossy(&read(&mut c, kptr, klen)?).into_owned();
            let Some((value, cas)) = c.data().shared.get(&key).cloned() else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, &value, out_ptr, out_len)?;
            let m = crate::memory(&mut c)?;
            m.write(&mut c, out_cas as usize, &cas.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Caller<'_, HostState>,
         kptr: i32,
         klen: i32,
         vptr: i32,
         vlen: i32,
         cas: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_set_shared_data");
            let key = String::from_utf8_lossy(&read(&mut c, kptr, klen)?).into_owned();
            let value = read(&mut c, vptr, vlen)?;
            let current = c.data().shared.get(&key).map_or(0, |(_, t)| *t);
            if cas != 0 && cas as u32 != current {
                return Ok(CAS_MISMATCH);
            }
            c.data_mut().shared.insert(key, (value, current + 1));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Caller<'_, HostState>, ptr: i32, len: i32, vptr: i32, vlen: i32| -> Result<i32> {
            c.data_mut().called("proxy_set_property");
            let path = String::from_utf8_lossy(&read(&mut c, ptr, len)?).replace('\0', ".");
            let value = read(&mut c, vptr, vlen)?;
            // Envoy keeps it as filter state `wasm.<path>`.
            c.data_mut()
                .filter_state
                .insert(format!("wasm.{path}"), value);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: Caller<'_, HostState>,
         ptr: i32,
         len: i32,
         _args: i32,
         _args_len: i32,
         _out_ptr: i32,
         _out_len: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_call_foreign_function");
            let name = String::from_utf8_lossy(&read(&mut c, ptr, len)?).into_owned();
            if name == "clear_route_cache" {
                c.data_mut().route_cache_cleared += 1;
                Ok(OK)
            } else {
                Ok(NOT_FOUND)
            }
        },
    )?;
    crate::callout::add_to_linker(linker)
}
