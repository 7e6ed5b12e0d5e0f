//! One lazily connected client per Triton backend, with each model's configuration read on first
//! use and kept. Triton being down at start-up is not fatal: calls fail with `UNAVAILABLE` (503 to
//! the client) until it is back; tonic reconnects on demand.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::kserve::model_info::ModelInfo;
use crate::kserve::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use crate::kserve::pb::{ModelConfigRequest, ModelReadyRequest, ServerReadyRequest};

/// A Triton server.
pub struct TritonBackend {
    pub name: String,
    channel: Channel,
    models: Mutex<HashMap<String, Arc<ModelInfo>>>,
}

impl TritonBackend {
    /// Prepares a client; nothing is connected until the first call.
    pub fn new(
        name: &str,
        host: &str,
        port: u16,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
            .map_err(|e| format!("backend {name}: {e}"))?
            .connect_timeout(connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        Ok(TritonBackend {
            name: name.to_string(),
            channel: endpoint.connect_lazy(),
            models: Mutex::new(HashMap::new()),
        })
    }

    pub fn client(&self) -> GrpcInferenceServiceClient<Channel> {
        GrpcInferenceServiceClient::new(self.channel.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    pub async fn server_ready(&self) -> bool {
        self.client()
            .server_ready(ServerReadyRequest {})
            .await
            .is_ok_and(|r| r.into_inner().ready)
    }

    pub async fn model_ready(&self, model: &str) -> bool {
        let req = ModelReadyRequest {
            name: model.to_string(),
            version: String::new(),
        };
        self.client()
            .model_ready(req)
            .await
            .is_ok_and(|r| r.into_inner().ready)
    }

    /// The model's configuration, read once. A failed read is not kept, so a model that comes
    /// up later is found then.
    pub async fn model_info(&self, model: &str) -> Result<Arc<ModelInfo>, Status> {
        if let Some(info) = self.models.lock().await.get(model) {
            return Ok(Arc::clone(info));
        }
        let req = ModelConfigRequest {
            name: model.to_string(),
            version: String::new(),
        };
        let config = self
            .client()
            .model_config(req)
            .await?
            .into_inner()
            .config
            .ok_or_else(|| {
                Status::new(
                    Code::Internal,
                    format!("Triton sent no configuration for model {model}"),
                )
            })?;
        let info = Arc::new(ModelInfo::from_config(&config));
        self.models
            .lock()
            .await
            .insert(model.to_string(), Arc::clone(&info));
        Ok(info)
    }
}
