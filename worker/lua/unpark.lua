-- Resume, one batch: move up to ARGV[1] parked jobs back into the queue with their old scores (so
-- they go before what was enqueued since), their arq job keys expiring again.
-- KEYS[1] the type's parked zset   KEYS[2] queue zset
-- ARGV[1] batch size   ARGV[2] arq job key prefix   ARGV[3] ms a queued job key lives
-- Returns how many moved (0: none left).
local batch = redis.call("ZRANGE", KEYS[1], 0, tonumber(ARGV[1]) - 1, "WITHSCORES")
for i = 1, #batch, 2 do
  redis.call("ZADD", KEYS[2], batch[i + 1], batch[i])
  redis.call("PEXPIRE", ARGV[2] .. batch[i], ARGV[3])
  redis.call("ZREM", KEYS[1], batch[i])
end
return #batch / 2
