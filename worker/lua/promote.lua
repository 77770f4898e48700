-- Move due scheduled jobs into arq's queue with their priority head start.
-- KEYS[1] scheduled zset   KEYS[2] queue zset
-- ARGV[1] now ms (the scheduling clock)   ARGV[2] wall-clock ms (arq's)   ARGV[3] priority step ms
-- ARGV[4] max jobs moved per call
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[4]))
local wall = tonumber(ARGV[2])
local step = tonumber(ARGV[3])
for _, member in ipairs(due) do
  local priority = tonumber(string.sub(member, 1, 2))
  redis.call("ZADD", KEYS[2], wall - priority * step, string.sub(member, 4))
  redis.call("ZREM", KEYS[1], member)
end
return #due
