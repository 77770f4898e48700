-- Enqueue one job atomically, honouring its idempotency key and its ordering key, and write its
-- status record (and, for a retry or a redrive, its event) in the same call.
-- KEYS[1] idempotency key (or the job key again when there is none)
-- KEYS[2] arq job key   KEYS[3] queue zset (run now)   KEYS[4] scheduled zset (run later)
-- KEYS[5] the ordering key's list (or the job key again when there is none)
-- KEYS[6] status record   KEYS[7] events stream   KEYS[8] the type's jobs index
-- ARGV[1] envelope id   ARGV[2] arq job id   ARGV[3] arq job record
-- ARGV[4] job key ttl ms   ARGV[5] score ms   ARGV[6] "1": scheduled, "0": run now
-- ARGV[7] idempotency ttl s ("0": no idempotency key)   ARGV[8] priority (1-10)
-- ARGV[9] "1": joins its ordering key's line   ARGV[10] due ms (0: now)
-- ARGV[11] status record JSON   ARGV[12] its ttl ms   ARGV[13] event name ("": none)
-- ARGV[14] events MAXLEN ~   ARGV[15] job type   ARGV[16] "0": list it in its type's index ("": already there)
-- ARGV[17] the request's fingerprint, kept with the idempotency key ("": none)
-- KEYS[9] the type's pending zset   KEYS[10] the paused types' set   KEYS[11] the type's parked zset
-- ARGV[18] now ms (the scheduling clock): a queued job's pending score (a scheduled one's is its due ms)
-- A job of a paused type that would be queued now is parked instead (worker/pause.py): no worker sees it.
-- Returns the job id that holds the key: ours, or the first job's ("<id> <fingerprint>" if it had one).
if ARGV[7] ~= "0" then
  local first = redis.call("GET", KEYS[1])
  if first then return first end
end
if redis.call("EXISTS", KEYS[2]) == 1 then return ARGV[1] end
if ARGV[7] ~= "0" then
  local held = ARGV[1]
  if ARGV[17] ~= "" then held = ARGV[1] .. " " .. ARGV[17] end
  redis.call("SET", KEYS[1], held, "EX", ARGV[7])
end
redis.call("SET", KEYS[2], ARGV[3], "PX", ARGV[4])
redis.call("SET", KEYS[6], ARGV[11], "PX", ARGV[12])
if ARGV[16] ~= "" then redis.call("ZADD", KEYS[8], ARGV[16], ARGV[1]) end
if ARGV[6] == "1" then redis.call("ZADD", KEYS[9], ARGV[10], ARGV[1]) else redis.call("ZADD", KEYS[9], ARGV[18], ARGV[1]) end
if ARGV[13] ~= "" then
  redis.call("XADD", KEYS[7], "MAXLEN", "~", ARGV[14], "*",
             "event", ARGV[13], "job_id", ARGV[1], "type", ARGV[15], "data", ARGV[11])
end
if ARGV[9] == "1" then
  local line = redis.call("RPUSH", KEYS[5], string.format("%02d:%d:%s", tonumber(ARGV[8]), tonumber(ARGV[10]), ARGV[2]))
  -- Behind another job of its key: stored, and queued when the one before it ends (release.lua).
  if line > 1 then return ARGV[1] end
end
if ARGV[6] == "1" then
  redis.call("ZADD", KEYS[4], ARGV[5], string.format("%02d:%s", tonumber(ARGV[8]), ARGV[2]))
elseif redis.call("SISMEMBER", KEYS[10], ARGV[15]) == 1 then
  redis.call("ZADD", KEYS[11], ARGV[5], ARGV[2])
  redis.call("PERSIST", KEYS[2])
else
  redis.call("ZADD", KEYS[3], ARGV[5], ARGV[2])
end
return ARGV[1]
