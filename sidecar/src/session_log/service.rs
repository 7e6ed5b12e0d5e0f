//! The gRPC access log service Envoy's HTTP gRPC access logger streams to: each entry's session
//! record is completed (`entry.rs`) and queued for the writer thread, never waited on. A record
//! that would overflow the queue's [`MAX_PENDING_BYTES`] is dropped and counted.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use airouter_core::contract::SESSION_LOG_NAME;
use tonic::{Request, Response, Status, Streaming};

use super::entry::record_of;
use super::proto::access_log_service_server::{AccessLogService, AccessLogServiceServer};
use super::proto::stream_access_logs_message::LogEntries;
use super::proto::{StreamAccessLogsMessage, StreamAccessLogsResponse};
use super::{Stats, MAX_PENDING_BYTES};

/// The access log service: it hands records to the writer.
pub struct Receiver {
    queue: Mutex<Sender<Vec<u8>>>,
    stats: Arc<Stats>,
}

impl Receiver {
    pub(super) fn new(queue: Sender<Vec<u8>>, stats: Arc<Stats>) -> Self {
        Receiver {
            queue: Mutex::new(queue),
            stats,
        }
    }

    pub fn into_server(self) -> AccessLogServiceServer<Receiver> {
        AccessLogServiceServer::new(self).max_decoding_message_size(64 * 1024 * 1024)
    }

    /// Queues one message's records; whether the stream is one of ours.
    fn take(&self, msg: StreamAccessLogsMessage) {
        let Some(LogEntries::HttpLogs(logs)) = msg.log_entries else {
            return;
        };
        for entry in &logs.log_entry {
            let Some(record) = record_of(entry) else {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            self.queue_record(record);
        }
    }

    fn queue_record(&self, record: Vec<u8>) {
        let len = record.len() as u64;
        let pending = self.stats.pending_bytes.fetch_add(len, Ordering::Relaxed);
        let sent = pending + len <= MAX_PENDING_BYTES
            && self.queue.lock().is_ok_and(|q| q.send(record).is_ok());
        if !sent {
            self.stats.pending_bytes.fetch_sub(len, Ordering::Relaxed);
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_multiple_of(1000) {
                tracing::warn!(
                    "session log: records dropped, the writer is behind ({} so far)",
                    dropped + 1
                );
            }
        }
    }
}

#[tonic::async_trait]
impl AccessLogService for Receiver {
    async fn stream_access_logs(
        &self,
        request: Request<Streaming<StreamAccessLogsMessage>>,
    ) -> Result<Response<StreamAccessLogsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut ours = None;
        while let Some(msg) = stream.message().await? {
            if let Some(id) = &msg.identifier {
                ours = Some(id.log_name == SESSION_LOG_NAME);
            }
            match ours {
                Some(true) => self.take(msg),
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "this service takes the access log named `{SESSION_LOG_NAME}` only"
                    )))
                }
            }
        }
        Ok(Response::new(StreamAccessLogsResponse {}))
    }
}
