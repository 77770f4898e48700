-- The API's brake on a client failing its token (worker/auth_brake.py): the one Redis call of a guarded request.
-- KEYS[1] the client's hold (string: held until, epoch s; expires with the cool-off)
-- KEYS[2] the client's recent failures (list of epoch s, newest first, at most ARGV[3] + 1; expires a window
--         after the last)
-- KEYS[3] the cluster's counters (hash: failures, blocked)
-- ARGV[1] now (epoch s, the caller's clock)   ARGV[2] "fail" (a missing or wrong token) or "check" (a good one)
-- ARGV[3] failures allowed within a window   ARGV[4] the window (s)   ARGV[5] the cool-off (s)
-- Returns the seconds the client is still held for, as a string, or "" if the request may go on.
-- Times come from the caller (so tests move a clock); the TTLs only bound memory.
local now = tonumber(ARGV[1])
local held_until = tonumber(redis.call("GET", KEYS[1]) or "0")
if held_until > now then
  redis.call("HINCRBY", KEYS[3], "blocked", 1)
  return string.format("%.6f", held_until - now)
end
if ARGV[2] ~= "fail" then return "" end
local limit = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
redis.call("HINCRBY", KEYS[3], "failures", 1)
redis.call("LPUSH", KEYS[2], ARGV[1])
redis.call("LTRIM", KEYS[2], 0, limit)
-- The (limit + 1)th newest failure still inside the window: more than `limit` of them in it.
local kept = redis.call("LINDEX", KEYS[2], limit)
if kept and tonumber(kept) > now - window then
  local cooloff = tonumber(ARGV[5])
  redis.call("SET", KEYS[1], string.format("%.6f", now + cooloff), "PX", math.ceil(cooloff * 1000))
  redis.call("DEL", KEYS[2])  -- the cool-off served, the client starts afresh
  redis.call("HINCRBY", KEYS[3], "blocked", 1)
  return string.format("%.6f", cooloff)
end
redis.call("PEXPIRE", KEYS[2], math.ceil(window * 1000))
return ""
