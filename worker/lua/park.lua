-- A worker took a job of a type it knows is paused: move it from the queue to the type's parked
-- zset with its score (same arq job, same attempt; its status record stays `queued`), unless the
-- type was resumed meanwhile. The worker then gives the run back (worker/arq_adapter.py finish_job).
-- KEYS[1] paused types' set   KEYS[2] queue zset   KEYS[3] the type's parked zset   KEYS[4] arq job key
-- ARGV[1] job type   ARGV[2] arq job id
-- Returns 1 if parked, 0 if the job should run (not paused, or no longer in the queue).
if redis.call("SISMEMBER", KEYS[1], ARGV[1]) == 0 then return 0 end
local score = redis.call("ZSCORE", KEYS[2], ARGV[2])
if not score then return 0 end
redis.call("ZADD", KEYS[3], score, ARGV[2])
redis.call("ZREM", KEYS[2], ARGV[2])
redis.call("PERSIST", KEYS[4])
return 1
