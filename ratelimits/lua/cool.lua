-- A 429: close the cooling keys until ARGV[2] (never shortening a longer cooldown); count it.
-- KEYS: nn cooldown keys, nn stats hashes, the stats index zset
-- ARGV: now, until, nn, stats_ttl_s, then nn key names, then nn flags ("1": this key cools)
local now, till, nn, stats_ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, nn do
  local name, cools = ARGV[4 + i], ARGV[4 + nn + i]
  local sk = KEYS[nn + i]
  redis.call('HINCRBY', sk, 'throttled', 1)
  if cools == '1' then
    local v = tonumber(redis.call('GET', KEYS[i]) or '0')
    if till > v then
      redis.call('SET', KEYS[i], string.format('%.17g', till), 'PX', math.ceil((till - now) * 1000) + 60000)
    end
    redis.call('HINCRBY', sk, 'cooldowns', 1)
  end
  redis.call('EXPIRE', sk, stats_ttl)
  redis.call('ZADD', KEYS[2 * nn + 1], now, name)
end
return nn
