-- After a schedule's tick was enqueued (worker/schedules.py): record the run, move next_run_at on.
-- KEYS[1] schedules hash (name -> spec JSON)   KEYS[2] due zset (name by next tick)
-- KEYS[3] the schedule's runs zset (job id by tick)
-- ARGV[1] name   ARGV[2] the spec JSON the tick was planned from   ARGV[3] job id ("": none enqueued)
-- ARGV[4] tick (epoch s)   ARGV[5] next tick (epoch s; "": take it off the due zset)   ARGV[6] runs kept
-- Recording is idempotent (a tick's job id is the same for every worker that got it), and
-- next_run_at only moves forward (GT), so two workers finishing one tick in any order agree.
-- A schedule removed, replaced, paused or resumed since the plan keeps what that call set.
local spec = redis.call("HGET", KEYS[1], ARGV[1])
if not spec then
  redis.call("ZREM", KEYS[2], ARGV[1])
  return 0
end
if ARGV[3] ~= "" then
  redis.call("ZADD", KEYS[3], ARGV[4], ARGV[3])
  redis.call("ZREMRANGEBYRANK", KEYS[3], 0, -(tonumber(ARGV[6]) + 1))
end
if spec ~= ARGV[2] then return 1 end
if ARGV[5] == "" then
  redis.call("ZREM", KEYS[2], ARGV[1])
else
  redis.call("ZADD", KEYS[2], "XX", "GT", ARGV[5], ARGV[1])
end
return 1
