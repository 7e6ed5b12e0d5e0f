//! The host side of HTTP call-outs (`proxy_http_call`), as Envoy does them: the call is made on
//! the root context, its answer is delivered to the root context with the call's token
//! ([`crate::Filter::http_call_response`]), and the module's SDK forwards it to the stream that
//! sent it after switching the effective context (`proxy_set_effective_context`). A held
//! request goes on with `proxy_continue_stream`. The root context's own call-outs (model
//! discovery) are sent from its timer ([`Filter::tick`]) and answered to it the same way.

use anyhow::Result;
use wasmtime::{Caller, Linker};

use crate::abi::parse_map;
use crate::{memory, read, Filter, HostState, ROOT_CONTEXT};

const OK: i32 = 0;

/// A call-out the module sent.
#[derive(Debug, Clone)]
pub struct HttpCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

impl HttpCall {
    /// The first value of a header of the call.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Filter {
    /// Delivers the answer of call-out `token` as Envoy does: to the root context, which made
    /// the call (`headers` empty and `body` empty: the call failed or timed out).
    pub fn http_call_response(
        &mut self,
        token: u32,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        let s = self.store.data_mut();
        s.call_response_headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        s.call_response_body = body.to_vec();
        let args = (
            ROOT_CONTEXT,
            i32::try_from(token)?,
            i32::try_from(headers.len())?,
            i32::try_from(body.len())?,
            0,
        );
        self.on_http_call_response.call(&mut self.store, args)
    }
}

impl Filter {
    /// Fires the root context's timer once, as Envoy does every period the module set
    /// ([`HostState::tick_period_ms`]).
    pub fn tick(&mut self) -> Result<()> {
        self.on_tick.call(&mut self.store, ROOT_CONTEXT)
    }
}

pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Caller<'_, HostState>, period: i32| -> Result<i32> {
            c.data_mut().called("proxy_set_tick_period_milliseconds");
            c.data_mut().tick_period_ms = Some(u32::try_from(period)?);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Caller<'_, HostState>,
         cluster_ptr: i32,
         cluster_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         body_ptr: i32,
         body_len: i32,
         _trailers_ptr: i32,
         _trailers_len: i32,
         timeout_ms: i32,
         token_out: i32|
         -> Result<i32> {
            c.data_mut().called("proxy_http_call");
            let cluster = read(&mut c, cluster_ptr, cluster_len)?;
            let cluster = String::from_utf8_lossy(&cluster).into_owned();
            let headers = parse_map(&read(&mut c, headers_ptr, headers_len)?);
            let body = read(&mut c, body_ptr, body_len)?;
            let token = u32::try_from(c.data().http_calls.len())? + 1;
            c.data_mut().http_calls.push(HttpCall {
                token,
                cluster,
                headers,
                body,
                timeout_ms: u32::try_from(timeout_ms)?,
            });
            let mem = memory(&mut c)?;
            mem.write(&mut c, usize::try_from(token_out)?, &token.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Caller<'_, HostState>, _context: i32| -> Result<i32> {
            c.data_mut().called("proxy_set_effective_context");
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: Caller<'_, HostState>, _stream: i32| -> Result<i32> {
            c.data_mut().called("proxy_continue_stream");
            c.data_mut().resumed += 1;
            Ok(OK)
        },
    )?;
    Ok(())
}
