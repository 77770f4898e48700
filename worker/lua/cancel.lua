-- Cancel a queued or scheduled job: take it out of the queue (or its ordering key's line), delete
-- its arq job, write its cancelled status record, append the event and wake its waiters. Refused
-- when it runs (its attempt's in-progress key exists: arq's worker took it) or left the queue.
-- KEYS[1] status record   KEYS[2] queue zset   KEYS[3] scheduled zset   KEYS[4] arq job key
-- KEYS[5] arq in-progress key   KEYS[6] ordering key's list (or KEYS[1] when none)
-- KEYS[7] events stream   KEYS[8] waiting marker   KEYS[9] the waiters' list
-- ARGV[1] the record as the caller read it (compare-and-set)   ARGV[2] the cancelled record
-- ARGV[3] its ttl s   ARGV[4] run id (arq job id)   ARGV[5] priority, 2 digits
-- ARGV[6] events MAXLEN ~   ARGV[7] job id   ARGV[8] job type   ARGV[9] "1": has an ordering key
-- KEYS[10] the type's pending zset   KEYS[11] the type's parked zset (a paused type's queued jobs)
-- Returns {"cancelled", 1 if it held its ordering key's head (the caller releases the next)}, or
-- {"changed"} (the record moved on: read it again), {"running"}, {"gone"} (not in the queue).
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return {"changed"} end
if redis.call("EXISTS", KEYS[5]) == 1 then return {"running"} end
local removed = redis.call("ZREM", KEYS[2], ARGV[4])
removed = removed + redis.call("ZREM", KEYS[3], ARGV[5] .. ":" .. ARGV[4], "99:" .. ARGV[4])
removed = removed + redis.call("ZREM", KEYS[11], ARGV[4])
local head = 0
if removed > 0 and ARGV[9] == "1" then head = 1 end
if removed == 0 and ARGV[9] == "1" then
  -- Waiting behind another job of its key (the head is always in a zset until it ends).
  local suffix = ":" .. ARGV[4]
  local line = redis.call("LRANGE", KEYS[6], 1, -1)
  for _, member in ipairs(line) do
    if string.sub(member, -#suffix) == suffix then
      removed = redis.call("LREM", KEYS[6], 1, member)
      break
    end
  end
end
if removed == 0 then return {"gone"} end
redis.call("DEL", KEYS[4])
redis.call("ZREM", KEYS[10], ARGV[7])
redis.call("SET", KEYS[1], ARGV[2], "EX", ARGV[3])
redis.call("XADD", KEYS[7], "MAXLEN", "~", ARGV[6], "*",
           "event", "cancelled", "job_id", ARGV[7], "type", ARGV[8], "data", ARGV[2])
if redis.call("EXISTS", KEYS[8]) == 1 then
  redis.call("RPUSH", KEYS[9], "1")
  redis.call("EXPIRE", KEYS[9], 120)
end
return {"cancelled", head}
