//! A benchmark baseline, not a product: an HTTP filter that waits for the whole request body and
//! the whole response body, as the AI Router filter must to rewrite them, and sets the one value
//! the generated routes match (filter state), but reads and changes nothing else. Loaded into the same bootstrap
//! as the real filter, it shows what any filter of this shape costs in Envoy's v8 runtime, so
//! `BENCHMARKS.md` can tell that floor apart from the router's own work.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Floor))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Floor;

impl Context for Floor {}

/// The route (filter state `wasm.airouter_route`) of the bench's only backend (see
/// `tests/bench/run.py`).
const ROUTE: (&str, &[u8]) = ("airouter_route", b"upstream");

fn wait_for_end(end_of_stream: bool) -> Action {
    if end_of_stream {
        Action::Continue
    } else {
        Action::Pause
    }
}

impl HttpContext for Floor {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        wait_for_end(end_of_stream)
    }

    fn on_http_request_body(&mut self, _body_size: usize, end_of_stream: bool) -> Action {
        if end_of_stream {
            // As the filter does: the route as filter state, then Envoy asked to look again.
            let _ = proxy_wasm::hostcalls::set_property(vec![ROUTE.0], Some(ROUTE.1));
            let _ = proxy_wasm::hostcalls::call_foreign_function("clear_route_cache", None);
        }
        wait_for_end(end_of_stream)
    }

    fn on_http_response_body(&mut self, _body_size: usize, end_of_stream: bool) -> Action {
        wait_for_end(end_of_stream)
    }
}
