-- Move due scheduled jobs into arq's queue with their priority head start.
-- KEYS[1] scheduled zset   KEYS[2] queue zset
-- ARGV[1] now ms   ARGV[2] priority step ms   ARGV[3] max jobs moved per call
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0, tonumber(ARGV[3]))
local step = tonumber(ARGV[2])
for i = 1, #due, 2 do
  local member = due[i]
  local priority = tonumber(string.sub(member, 1, 2))
  redis.call("ZADD", KEYS[2], tonumber(due[i + 1]) - priority * step, string.sub(member, 4))
  redis.call("ZREM", KEYS[1], member)
end
return #due / 2
