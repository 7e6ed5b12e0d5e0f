//! The Triton stream driver: one `ModelStreamInfer` call per client request, carrying one
//! Triton request per choice, its responses turned into [`Event`]s by a [`StreamDecoder`] and
//! sent on a channel as they come.
//!
//! A failure becomes a last [`Event::Failed`]. A client that goes away drops the receiver, which
//! ends the driver and cancels the gRPC stream.

use airouter_core::config::TritonFamily;
use airouter_core::errors::ApiError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::trace::{with_trace, TraceContext};
use crate::kserve::pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use crate::kserve::pb::ModelInferRequest;
use crate::translate::kserve_error;
use crate::translate::kserve_response::{Event, StreamDecoder};

/// Everything the driver task owns.
pub struct ModelStream {
    pub client: GrpcInferenceServiceClient<Channel>,
    /// One request per choice, in choice order.
    pub requests: Vec<ModelInferRequest>,
    pub decoder: StreamDecoder,
    pub trace: TraceContext,
    /// The model name the client asked for, for errors.
    pub client_model: String,
    /// For the log.
    pub family: TritonFamily,
}

/// The client went away: stop quietly.
struct Gone;

impl ModelStream {
    /// Starts the driver task; its events arrive on the returned channel, ending with
    /// [`Event::Usage`] or [`Event::Failed`].
    pub fn start(self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(self.run(tx));
        rx
    }

    async fn run(mut self, tx: mpsc::Sender<Event>) {
        match self.drive(&tx).await {
            Ok(Ok(())) | Ok(Err(Gone)) => {}
            Err(e) => {
                let _ = tx.send(Event::Failed(e)).await;
            }
        }
    }

    async fn drive(&mut self, tx: &mpsc::Sender<Event>) -> Result<Result<(), Gone>, ApiError> {
        let requests = std::mem::take(&mut self.requests);
        let model = self.client_model.clone();
        let (req_tx, req_rx) = mpsc::channel(requests.len().max(1));
        for r in requests {
            req_tx
                .send(r)
                .await
                .map_err(|_| ApiError::internal("could not queue the Triton request"))?;
        }
        let mut stream = self
            .client
            .model_stream_infer(with_trace(ReceiverStream::new(req_rx), &self.trace))
            .await
            .map_err(|s| kserve_error::from_status(&s, &model))?
            .into_inner();
        while !self.decoder.is_complete() {
            let msg = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return Err(ApiError::with_status(
                        502,
                        "Triton ended the stream before the answer was complete.".into(),
                        Some("bad_upstream_response"),
                    ))
                }
                Err(s) => return Err(kserve_error::from_status(&s, &model)),
            };
            for event in self.decoder.accept(&msg)? {
                if tx.send(event).await.is_err() {
                    return Ok(Err(Gone));
                }
            }
        }
        drop(req_tx);
        let (prompt, completion) = self.decoder.usage();
        tracing::debug!(family = ?self.family, choices = self.decoder.choices(), completion, "request done");
        if tx.send(Event::Usage { prompt, completion }).await.is_err() {
            return Ok(Err(Gone));
        }
        Ok(Ok(()))
    }
}
