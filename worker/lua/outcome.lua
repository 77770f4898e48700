-- A job ended (completed or dead-lettered): count it once, however many times a crashed worker
-- made it run, and in the same call write its final status record, append its event and wake
-- anyone waiting for it.
-- KEYS[1] final marker   KEYS[2] stats hash   KEYS[3] status record   KEYS[4] events stream
-- KEYS[5] waiting marker   KEYS[6] the waiters' list
-- ARGV[1] marker ttl s   ARGV[2] status record JSON   ARGV[3] its ttl s   ARGV[4] event name
-- ARGV[5] events MAXLEN ~   ARGV[6] job id   ARGV[7] job type   ARGV[8..] stats fields to increment
if redis.call("SET", KEYS[1], "1", "NX", "EX", ARGV[1]) then
  for i = 8, #ARGV do redis.call("HINCRBY", KEYS[2], ARGV[i], 1) end
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
