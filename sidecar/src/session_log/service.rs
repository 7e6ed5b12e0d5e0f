//! The gRPC access log service Envoy's HTTP gRPC access logger streams to: each entry's session
//! record is completed (`entry.rs`), its number noted (`sequences.rs`), and queued for the
//! writer thread, never waited on. A record whose number was received before (Envoy retried a
//! stream) is counted as a duplicate and not queued again; one that would overflow the queue's
//! [`MAX_PENDING_BYTES`] is dropped and counted.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use airouter_core::contract::SESSION_LOG_NAME;
use tonic::{Request, Response, Status, Streaming};

use super::entry::{record_of, Stored};
use super::proto::access_log_service_server::{AccessLogService, AccessLogServiceServer};
use super::proto::stream_access_logs_message::LogEntries;
use super::proto::{StreamAccessLogsMessage, StreamAccessLogsResponse};
use super::{now_ms, Stats, MAX_PENDING_BYTES};

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
        let now = now_ms();
        for entry in &logs.log_entry {
            let Some(Stored { bytes, sequence }) = record_of(entry) else {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let new = sequence.is_none_or(|(epoch, n)| self.stats.sequences().note(epoch, n, now));
            if new {
                self.queue_record(bytes);
            } else {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
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

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::super::proto::stream_access_logs_message::HttpAccessLogEntries;
    use super::super::proto::{AccessLogCommon, Any, BytesValue, HttpAccessLogEntry};
    use super::*;
    use airouter_core::contract::SESSION_FILTER_STATE;

    fn entry(record: &str) -> HttpAccessLogEntry {
        let mut common = AccessLogCommon::default();
        let value = BytesValue {
            value: record.as_bytes().to_vec(),
        };
        common.filter_state_objects.insert(
            SESSION_FILTER_STATE.into(),
            Any {
                type_url: "type.googleapis.com/google.protobuf.BytesValue".into(),
                value: value.encode_to_vec(),
            },
        );
        HttpAccessLogEntry {
            common_properties: Some(common),
            ..Default::default()
        }
    }

    fn numbered(n: u64) -> HttpAccessLogEntry {
        entry(&format!(
            r#"{{"schema":1,"sequence":{{"epoch":5,"n":{n}}}}}"#
        ))
    }

    #[test]
    fn a_record_received_again_is_counted_not_queued_and_a_gap_is_lost() {
        let (tx, rx) = std::sync::mpsc::channel();
        let stats = Arc::new(Stats::default());
        let receiver = Receiver::new(tx, Arc::clone(&stats));
        let mut entries: Vec<_> = [1, 2, 4, 2, 1].into_iter().map(numbered).collect();
        entries.push(entry(r#"{"schema":1}"#));
        receiver.take(StreamAccessLogsMessage {
            identifier: None,
            log_entries: Some(LogEntries::HttpLogs(HttpAccessLogEntries {
                log_entry: entries,
            })),
        });
        assert_eq!(rx.try_iter().count(), 4, "1, 2, 4 and the unnumbered one");
        let c = stats.counts();
        assert_eq!((c.duplicates, c.dropped, c.skipped), (2, 0, 0));
        let later = super::super::now_ms() + super::super::sequences::GRACE_MS;
        assert_eq!(stats.sequences().lost(later), 1, "3 never came");
    }
}
