//! A call's deadline, from its `grpc-timeout` header (gRPC over HTTP/2: at most 8 digits, then
//! `H`, `M`, `S`, `m`, `u` or `n` for hours down to nanoseconds); a call without one has none.
//!
//! The sidecar ends a call whose deadline passes with `DEADLINE_EXCEEDED` itself, [`MARGIN`]
//! early: tonic's transport also times out unary calls by `grpc-timeout`, and ends them with
//! `CANCELLED`; answering first keeps the code faithful. Either way the upstream request is
//! dropped, which cancels it.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::Status;

/// How much earlier than its deadline the sidecar ends a call: more than the time between
/// tonic's transport taking the call and the service starting on it.
pub const MARGIN: Duration = Duration::from_millis(20);

/// The header carrying the deadline (gRPC over HTTP/2).
const HEADER: &str = "grpc-timeout";

/// The duration a `grpc-timeout` value says, `None` when it is malformed.
pub fn parse(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = value.get(..value.len() - unit.len_utf8())?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// When the sidecar gives up on the call whose metadata this is: its `grpc-timeout` from now,
/// less [`MARGIN`]; `None` without a (well-formed) header.
pub fn of(metadata: &MetadataMap) -> Option<Instant> {
    let timeout = parse(metadata.get(HEADER)?.to_str().ok()?)?;
    Some(Instant::now() + timeout.saturating_sub(MARGIN))
}

/// The status of a call whose deadline passed.
pub fn exceeded() -> Status {
    Status::deadline_exceeded("the call's deadline passed before the answer was complete")
}

/// `work`, given up (dropped, which cancels what it started) with [`exceeded`] at `deadline`.
pub async fn within<T>(
    deadline: Option<Instant>,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match deadline {
        Some(at) => tokio::time::timeout_at(at, work)
            .await
            .unwrap_or_else(|_| Err(exceeded())),
        None => work.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_the_malformed() {
        assert_eq!(parse("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(parse("99999999u"), Some(Duration::from_micros(99_999_999)));
        assert_eq!(parse("7n"), Some(Duration::from_nanos(7)));
        for bad in [
            "",
            "S",
            "100",
            "123456789S",
            "1.5S",
            "-1S",
            "10s",
            "10 S",
            "1é",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn work_past_the_deadline_is_dropped_with_deadline_exceeded() {
        let mut md = MetadataMap::new();
        md.insert(HEADER, "1S".parse().unwrap());
        let at = of(&md).unwrap();
        assert_eq!(at - Instant::now(), Duration::from_secs(1) - MARGIN);
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Status>(())
        };
        let err = within(Some(at), slow).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(within(None, async { Ok::<_, Status>(7) }).await.unwrap(), 7);
        assert!(of(&MetadataMap::new()).is_none());
    }
}
