-- Enqueue one job atomically, honouring its idempotency key and its ordering key.
-- KEYS[1] idempotency key (or the job key again when there is none)
-- KEYS[2] arq job key   KEYS[3] queue zset (run now)   KEYS[4] scheduled zset (run later)
-- KEYS[5] the ordering key's list (or the job key again when there is none)
-- ARGV[1] envelope id   ARGV[2] arq job id   ARGV[3] arq job record
-- ARGV[4] job key ttl ms   ARGV[5] score ms   ARGV[6] "1": scheduled, "0": run now
-- ARGV[7] idempotency ttl s ("0": no idempotency key)   ARGV[8] priority (1-10)
-- ARGV[9] "1": joins its ordering key's line   ARGV[10] due ms (0: now)
-- Returns the job id that holds the key: ours, or the first job's.
if ARGV[7] ~= "0" then
  local first = redis.call("GET", KEYS[1])
  if first then return first end
end
if redis.call("EXISTS", KEYS[2]) == 1 then return ARGV[1] end
if ARGV[7] ~= "0" then redis.call("SET", KEYS[1], ARGV[1], "EX", ARGV[7]) end
redis.call("SET", KEYS[2], ARGV[3], "PX", ARGV[4])
if ARGV[9] == "1" then
  local line = redis.call("RPUSH", KEYS[5], string.format("%02d:%d:%s", tonumber(ARGV[8]), tonumber(ARGV[10]), ARGV[2]))
  -- Behind another job of its key: stored, and queued when the one before it ends (release.lua).
  if line > 1 then return ARGV[1] end
end
if ARGV[6] == "1" then
  redis.call("ZADD", KEYS[4], ARGV[5], string.format("%02d:%s", tonumber(ARGV[8]), ARGV[2]))
else
  redis.call("ZADD", KEYS[3], ARGV[5], ARGV[2])
end
return ARGV[1]
