//! The gRPC service Envoy's `ratelimit` filter calls. An over-limit answer carries the client's
//! OpenAI-format error as the body and `Retry-After`, which Envoy sends as its 429. A Redis that
//! cannot be reached is an `UNAVAILABLE` error: Envoy then lets the request through or refuses
//! it, as `global_limits.failure_mode` says.

use std::time::{SystemTime, UNIX_EPOCH};

use airouter_core::config::Plan;
use airouter_core::contract::RL_DOMAIN as DOMAIN;
use tonic::{Request, Response, Status};

use super::descriptors::{self, Charge, Limits};
use super::proto::rate_limit_response::Code;
use super::proto::rate_limit_service_server::{RateLimitService, RateLimitServiceServer};
use super::proto::{HeaderValue, RateLimitRequest, RateLimitResponse};
use super::store::{Store, Verdict};

pub struct Limiter {
    limits: Limits,
    store: Store,
}

impl Limiter {
    pub fn new(plan: &Plan, store: Store) -> Self {
        Limiter {
            limits: Limits::new(plan),
            store,
        }
    }

    pub fn into_server(self) -> RateLimitServiceServer<Limiter> {
        RateLimitServiceServer::new(self)
    }

    async fn decide(&self, req: &RateLimitRequest) -> Result<RateLimitResponse, Status> {
        if req.domain != DOMAIN {
            return Err(Status::invalid_argument(format!(
                "unknown domain `{}`",
                req.domain
            )));
        }
        tracing::debug!(?req.descriptors, req.hits_addend, "rate limit request");
        let charges: Vec<Charge> = req
            .descriptors
            .iter()
            .filter_map(|d| descriptors::charge(&self.limits, d, req.hits_addend))
            .collect();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let verdict = self.store.apply(&charges, now_ms).await.map_err(|e| {
            tracing::warn!("global limits: {e}");
            Status::unavailable(e)
        })?;
        Ok(match verdict {
            Verdict::Allowed => RateLimitResponse {
                overall_code: Code::Ok.into(),
                ..Default::default()
            },
            Verdict::Refused { index, wait_ms } => {
                let err = charges
                    .get(index)
                    .map(|c| c.refusal.error(wait_ms))
                    .unwrap_or_else(|| airouter_core::errors::ApiError::backend_limited(wait_ms));
                let retry_after = err.retry_after.unwrap_or(1).to_string();
                RateLimitResponse {
                    overall_code: Code::OverLimit.into(),
                    response_headers_to_add: vec![
                        header("content-type", "application/json"),
                        header("retry-after", &retry_after),
                    ],
                    raw_body: err.body(),
                    ..Default::default()
                }
            }
        })
    }
}

fn header(key: &str, value: &str) -> HeaderValue {
    HeaderValue {
        key: key.into(),
        value: value.into(),
        raw_value: Vec::new(),
    }
}

#[tonic::async_trait]
impl RateLimitService for Limiter {
    async fn should_rate_limit(
        &self,
        request: Request<RateLimitRequest>,
    ) -> Result<Response<RateLimitResponse>, Status> {
        self.decide(request.get_ref()).await.map(Response::new)
    }
}
