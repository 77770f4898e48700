-- A job ended (completed or dead-lettered): count it once, however many times a crashed worker
-- made it run, and in the same call write its final status record, append its event and wake
-- anyone waiting for it.
-- KEYS[1] final marker   KEYS[2] stats hash   KEYS[3] status record   KEYS[4] events stream
-- KEYS[5] waiting marker   KEYS[6] the waiters' list
-- ARGV[1] marker ttl s   ARGV[2] status record JSON   ARGV[3] its ttl s   ARGV[4] event name
-- ARGV[5] events MAXLEN ~   ARGV[6] job id   ARGV[7] job type   ARGV[8..] stats fields to increment:
-- "field" by 1, "field<TAB>N" by N (a histogram's sum, worker/stats.py); a field "@name" goes to
-- this minute's throughput hash KEYS[8] instead (as "name"; it expires after an hour).
-- KEYS[7] the type's pending zset: the job leaves it (worker/queue_stats.py)
if redis.call("SET", KEYS[1], "1", "NX", "EX", ARGV[1]) then
  for i = 8, #ARGV do
    local field, by = string.match(ARGV[i], "^(.-)\t(%-?%d+)$")
    if not field then field, by = ARGV[i], 1 end
    if string.sub(field, 1, 1) == "@" then
      if redis.call("HINCRBY", KEYS[8], string.sub(field, 2), by) == tonumber(by) then
        redis.call("EXPIRE", KEYS[8], 3720)
      end
    else
      redis.call("HINCRBY", KEYS[2], field, by)
    end
  end
  redis.call("ZREM", KEYS[7], ARGV[6])
  redis.call("SET", KEYS[3], ARGV[2], "EX", ARGV[3])
  redis.call("XADD", KEYS[4], "MAXLEN", "~", ARGV[5], "*",
             "event", ARGV[4], "job_id", ARGV[6], "type", ARGV[7], "data", ARGV[2])
  if redis.call("EXISTS", KEYS[5]) == 1 then
    redis.call("RPUSH", KEYS[6], "1")
    redis.call("EXPIRE", KEYS[6], 120)
  end
  return 1
end
return 0
