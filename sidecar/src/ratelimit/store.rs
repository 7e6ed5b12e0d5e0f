//! Sliding windows in Redis. Each limited thing is one hash: a field per time slot (a sixtieth of
//! its window) holding what was taken in that slot. One Lua script checks every `Take` of a
//! request against its window and, only when all fit, applies every charge, so concurrent
//! requests from any number of Envoys never overshoot and a refused request takes nothing.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::Mutex;

use super::descriptors::{Charge, Op};

/// Slots per window: the window slides in steps of 1/60 of its length.
const SLOTS: u64 = 60;

/// KEYS: one hash per charge. ARGV: now_ms, then per charge: op (`t` take / `a` adjust),
/// slot_ms, limit, amount, at_ms. Returns {1} when applied, or {0, index, wait_ms} for the
/// first take that does not fit (1-based index; wait until its oldest slot leaves the window).
const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
local n = #KEYS
for i = 1, n do
  local a = 1 + (i - 1) * 5
  local op, slot_ms = ARGV[a + 1], tonumber(ARGV[a + 2])
  local limit, amount = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local cur = math.floor(now / slot_ms)
  local first = cur - 59
  local fields = redis.call('HGETALL', KEYS[i])
  local used, oldest = 0, nil
  for j = 1, #fields, 2 do
    local slot = tonumber(fields[j])
    if slot < first then
      redis.call('HDEL', KEYS[i], fields[j])
    else
      local v = tonumber(fields[j + 1])
      used = used + v
      if v > 0 and (oldest == nil or slot < oldest) then oldest = slot end
    end
  end
  if op == 't' and used + amount > limit then
    local wait = slot_ms
    if oldest ~= nil then wait = (oldest + 60) * slot_ms - now end
    return {0, i, wait}
  end
end
for i = 1, n do
  local a = 1 + (i - 1) * 5
  local op, slot_ms = ARGV[a + 1], tonumber(ARGV[a + 2])
  local amount, at = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local cur = math.floor(now / slot_ms)
  local slot = cur
  if op == 'a' then slot = math.min(math.floor(at / slot_ms), cur) end
  if slot >= cur - 59 and amount ~= 0 then
    redis.call('HINCRBY', KEYS[i], slot, amount)
  end
  redis.call('PEXPIRE', KEYS[i], slot_ms * 61)
end
return {1}
";

/// The outcome for a request's charges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// The charge at this index did not fit; retry after this many milliseconds.
    Refused {
        index: usize,
        wait_ms: u64,
    },
}

pub struct Store {
    client: redis::Client,
    conn: Mutex<Option<ConnectionManager>>,
    script: redis::Script,
    timeout: Duration,
}

impl Store {
    /// Connects lazily: a Redis that is down at start-up is not fatal.
    pub fn new(url: &str, timeout: Duration) -> Result<Store, String> {
        let client = redis::Client::open(url).map_err(|e| format!("global_limits.redis: {e}"))?;
        Ok(Store {
            client,
            conn: Mutex::new(None),
            script: redis::Script::new(SCRIPT),
            timeout,
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = ConnectionManager::new(self.client.clone())
            .await
            .map_err(|e| format!("Redis is unreachable: {}", e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Applies a request's charges atomically, within the configured time.
    pub async fn apply(&self, charges: &[Charge], now_ms: u64) -> Result<Verdict, String> {
        if charges.is_empty() {
            return Ok(Verdict::Allowed);
        }
        tokio::time::timeout(self.timeout, self.run(charges, now_ms))
            .await
            .map_err(|_| "Redis did not answer in time".to_string())?
    }

    async fn run(&self, charges: &[Charge], now_ms: u64) -> Result<Verdict, String> {
        let mut conn = self.connection().await?;
        let mut inv = self.script.prepare_invoke();
        inv.arg(now_ms);
        for c in charges {
            inv.key(&c.redis_key);
            let slot_ms = (c.window_ms / SLOTS).max(1);
            let (op, amount, at) = match c.op {
                Op::Take { amount } => ("t", i64::try_from(amount).unwrap_or(i64::MAX), 0),
                Op::Adjust { delta, at_ms } => ("a", delta, at_ms),
            };
            inv.arg(op).arg(slot_ms).arg(c.limit).arg(amount).arg(at);
        }
        let reply: Vec<i64> = inv
            .invoke_async(&mut conn)
            .await
            .map_err(|e| format!("Redis: {}", e))?;
        Ok(match reply.as_slice() {
            [0, index, wait] => Verdict::Refused {
                index: usize::try_from(*index - 1).unwrap_or(0),
                wait_ms: u64::try_from(*wait).unwrap_or(0).max(1),
            },
            _ => Verdict::Allowed,
        })
    }
}
