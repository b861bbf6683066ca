//! The Redis nonce store's consumes, in batches (`batch.rs`): the nonces of concurrent
//! requests go to Redis as one script call (`EVALSHA`, or `EVAL` pipelined with `WAIT` when
//! replicas must acknowledge), which decides them one after the other in the order they
//! joined the batch, exactly as separate calls would, and answers one code per nonce. With
//! `nonce_replicas_ack` one `WAIT` covers the whole batch.

use std::sync::Arc;

use ::redis::Script;
use whitebit_auth::NonceMode;
use whitebit_auth::nonce::window_entry_expires_at;

use super::batch::{Flush, Member, Queue};
use super::redis::Shared;
use crate::{KeyId, StoreError};

/// The consume script, for any number of nonces. Nonce i (from 1): `KEYS[2i-1]` its key's
/// mark, `KEYS[2i]` its window entry (window mode; the mark again in strict mode);
/// `ARGV[3i-2]` `s` (strict) or `w` (window), `ARGV[3i-1]` the nonce as 16 lowercase hex
/// digits, `ARGV[3i]` (window mode) the entry's absolute expiry, Unix ms in decimal.
/// Answers one code per nonce: 0 accepted, 1 not increasing, 2 reused, 3 stored mark
/// unreadable (nothing written for that nonce). A malformed argument fails the whole call
/// before anything is written.
pub(crate) const CONSUME_LUA: &str = r"
local function valid(s)
  return type(s) == 'string' and #s == 16 and string.find(s, '^[0-9a-f]+$') ~= nil
end
local function greater(a, b)
  for i = 1, 16 do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end
local n = #ARGV / 3
if #KEYS ~= 2 * n or n ~= math.floor(n) then
  return redis.error_reply('wbauth: wrong number of arguments')
end
for i = 1, n do
  local mode = ARGV[3 * i - 2]
  if not valid(ARGV[3 * i - 1]) then return redis.error_reply('wbauth: malformed nonce argument') end
  if mode ~= 's' and mode ~= 'w' then return redis.error_reply('wbauth: unknown mode') end
end
local out = {}
for i = 1, n do
  local mark_key, entry_key = KEYS[2 * i - 1], KEYS[2 * i]
  local mode, nonce = ARGV[3 * i - 2], ARGV[3 * i - 1]
  local mark = redis.call('GET', mark_key)
  if mark and not valid(mark) then
    out[i] = 3
  elseif mode == 's' then
    if mark and not greater(nonce, mark) then
      out[i] = 1
    else
      redis.call('SET', mark_key, nonce)
      out[i] = 0
    end
  elseif not redis.call('SET', entry_key, '1', 'NX', 'PXAT', ARGV[3 * i]) then
    out[i] = 2
  else
    if not mark or greater(nonce, mark) then redis.call('SET', mark_key, nonce) end
    out[i] = 0
  end
end
return out
";

pub(crate) const ACCEPTED: i64 = 0;
pub(crate) const NOT_INCREASING: i64 = 1;
pub(crate) const REUSED: i64 = 2;
pub(crate) const MARK_UNREADABLE: i64 = 3;

/// Batches in flight at once: one, so that everything queued while a call is in flight
/// (a round trip and Redis's fsync) goes into the next call.
const FLUSHERS: usize = 1;
/// Nonces in one script call at most.
const MAX_BATCH: usize = 256;

/// A queue of consumes for the Redis nonce store.
pub(crate) fn queue() -> Queue<Consume, Result<i64, StoreError>> {
    Queue::new(FLUSHERS, MAX_BATCH)
}

/// The consume script.
pub(crate) fn script() -> Script {
    Script::new(CONSUME_LUA)
}

pub(crate) fn mark_key(key: KeyId) -> String {
    format!("wbauth:{{k{key}}}:hw")
}

pub(crate) fn entry_key(key: KeyId, nonce: u64) -> String {
    format!("wbauth:{{k{key}}}:w:{nonce}")
}

/// A nonce or mark as stored: exactly 16 lowercase hex digits.
pub(crate) fn encode_mark(nonce: u64) -> String {
    format!("{nonce:016x}")
}

/// A stored mark, when it is exactly 16 lowercase hex digits.
pub(crate) fn decode_mark(text: &str) -> Option<u64> {
    let canonical = text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !canonical {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// One nonce to consume: its keys and arguments, as the script takes them.
pub(crate) struct Consume {
    keys: [String; 2],
    args: [String; 3],
}

impl Consume {
    pub(crate) fn new(key: KeyId, nonce: u64, mode: NonceMode) -> Self {
        match mode {
            NonceMode::Strict => Self {
                keys: [mark_key(key), mark_key(key)],
                args: ["s".into(), encode_mark(nonce), String::new()],
            },
            NonceMode::Window => Self {
                keys: [mark_key(key), entry_key(key, nonce)],
                args: [
                    "w".into(),
                    encode_mark(nonce),
                    window_entry_expires_at(nonce).to_string(),
                ],
            },
        }
    }
}

type Members = Vec<Member<Consume, Result<i64, StoreError>>>;

impl Flush for Shared {
    type Item = Consume;
    type Answer = Result<i64, StoreError>;

    fn queue(&self) -> &Queue<Consume, Result<i64, StoreError>> {
        &self.queue
    }

    async fn flush(self: Arc<Self>, batch: Members) {
        match self.consume_all(&batch).await {
            Ok(codes) => {
                for (member, code) in batch.into_iter().zip(codes) {
                    member.answer(code);
                }
            }
            Err(e) => {
                for member in batch {
                    member.answer(Err(StoreError::Unavailable(e.clone())));
                }
            }
        }
    }
}

impl Shared {
    /// One script call for the batch: a code per member (an accepted one that the replicas
    /// did not acknowledge fails closed), or the message that fails them all.
    async fn consume_all(&self, batch: &Members) -> Result<Vec<Result<i64, StoreError>>, String> {
        let (codes, acked): (Vec<i64>, Option<i64>) = if self.replicas_ack == 0 {
            let mut invocation = self.script.prepare_invoke();
            for member in batch {
                invocation.key(&member.item.keys).arg(&member.item.args);
            }
            let codes = self
                .run("consume", |mut con| async move {
                    invocation.invoke_async(&mut con).await
                })
                .await
                .map_err(|e| error_text(&e))?;
            (codes, None)
        } else {
            // EVAL and WAIT in one pipeline on one connection: WAIT counts the replicas that
            // hold this client's writes, so it must follow the writes on the same client.
            let (timeout, wanted) = (self.wait_timeout_ms(), self.replicas_ack);
            let mut eval = ::redis::cmd("EVAL");
            eval.arg(CONSUME_LUA).arg(batch.len() * 2);
            for member in batch {
                eval.arg(&member.item.keys);
            }
            for member in batch {
                eval.arg(&member.item.args);
            }
            let (codes, acked) = self
                .run("consume and WAIT", |mut con| async move {
                    ::redis::pipe()
                        .add_command(eval)
                        .cmd("WAIT")
                        .arg(wanted)
                        .arg(timeout)
                        .query_async(&mut con)
                        .await
                })
                .await
                .map_err(|e| error_text(&e))?;
            (codes, Some(acked))
        };
        if codes.len() != batch.len() {
            return Err(error_text(&self.remote.error(StoreError::Corrupt(
                format!(
                    "{}: the nonce script answered {} codes for {} nonces",
                    self.remote.at(),
                    codes.len(),
                    batch.len()
                ),
            ))));
        }
        Ok(codes
            .into_iter()
            .map(|code| match acked {
                Some(acked) if code == ACCEPTED => self.replicated("consume", acked).map(|()| code),
                _ => Ok(code),
            })
            .collect())
    }
}

/// A failure's message, for each member of the batch.
fn error_text(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(m) | StoreError::Corrupt(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_fixed_width_and_order_preserving() {
        let samples = [
            0,
            1,
            (1 << 53) - 1,
            1 << 53,
            (1 << 53) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        for pair in samples.windows(2) {
            let (a, b) = (encode_mark(pair[0]), encode_mark(pair[1]));
            assert_eq!(a.len(), 16);
            assert!(a.as_bytes() < b.as_bytes(), "{a} {b}");
        }
        for n in samples {
            assert_eq!(decode_mark(&encode_mark(n)), Some(n));
        }
        for bad in [
            "",
            "1",
            "000000000000000G",
            "000000000000000A",
            "00000000000000001",
        ] {
            assert_eq!(decode_mark(bad), None, "{bad}");
        }
    }

    #[test]
    fn keys_share_a_hash_tag() {
        assert_eq!(mark_key(7), "wbauth:{k7}:hw");
        assert_eq!(entry_key(7, 42), "wbauth:{k7}:w:42");
    }
}
