-- One request's limits, all keys at once: ratelimits/algorithm.py `acquire`, step for step.
-- KEYS: nm meter timelines (zset of runs: member start, score end), nl lease zsets, nn cooldown keys,
--       nn stats hashes, the stats index zset
-- ARGV: now, max_wait_s, booked_at ("" = none), lease_id, nm, nl, nn, lease_poll_s, stats_ttl_s,
--       rate_bucket_s, max_rounds, then nm (step, merge gap) pairs, nl (limit, ttl_s) pairs, nn key names
-- Returns {kind, at}: kind go | retry | defer | book, at as a decimal string (seconds).
local now = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local booked = tonumber(ARGV[3])
local lease_id = ARGV[4]
local nm, nl, nn = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local poll, stats_ttl, bucket_s = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local max_rounds = tonumber(ARGV[11])
local a = 12
local steps, gaps = {}, {}
for i = 1, nm do steps[i] = tonumber(ARGV[a]); gaps[i] = tonumber(ARGV[a + 1]); a = a + 2 end
local lease_limit, lease_ttl = {}, {}
for i = 1, nl do lease_limit[i] = tonumber(ARGV[a]); lease_ttl[i] = tonumber(ARGV[a + 1]); a = a + 2 end
local names = {}
for i = 1, nn do names[i] = ARGV[a]; a = a + 1 end
local K_LEASE, K_COOL, K_STATS = nm, nm + nl, nm + nl + nn
local K_INDEX = nm + nl + 2 * nn + 1

local function fmt(x) return string.format('%.17g', x) end
local function ms(x) return math.ceil(x * 1000) end
local function bump(field, by)
  for i = 1, nn do
    local k = KEYS[K_STATS + i]
    redis.call('HINCRBY', k, field, by)
    redis.call('EXPIRE', k, stats_ttl)
    redis.call('ZADD', KEYS[K_INDEX], now, names[i])
  end
end
-- Runs of booked time (algorithm.py): member = start, score = end; disjoint, so sorted both ways.
-- earliest t' >= t with [t', t' + step) free on one timeline (algorithm.py earliest_fit)
local function fit(key, t, step)
  while true do
    local row = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(t), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if not row[1] then return t end
    if tonumber(row[1]) >= t + step then return t end
    local e = tonumber(row[2])
    if e > t then t = e end
  end
end
-- a gap of exactly one step (a skipped slot) stays usable: float error must not merge it (algorithm.py)
local function merges(e, next_start, gap) return next_start - e <= 0 or next_start - e < gap - 1e-6 end
-- book [slot, slot + step) on every meter, merged with neighbours closer than the meter's gap
local function commit_meters(slot)
  for i = 1, nm do
    local k = KEYS[i]
    local s, e = slot, slot + steps[i]
    local prev = redis.call('ZREVRANGEBYSCORE', k, fmt(slot), '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if prev[1] and merges(tonumber(prev[2]), s, gaps[i]) then
      s = tonumber(prev[1])
      redis.call('ZREM', k, prev[1])
    end
    local nxt = redis.call('ZRANGEBYSCORE', k, '(' .. fmt(slot), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if nxt[1] and merges(e, tonumber(nxt[1]), gaps[i]) then
      e = math.max(e, tonumber(nxt[2]))
      redis.call('ZREM', k, nxt[1])
    end
    redis.call('ZADD', k, fmt(e), fmt(s))
    -- the TTL only collects garbage: never shorten it below a later booking's end
    local need = ms(e - now) + 60000
    if redis.call('PTTL', k) < need then redis.call('PEXPIRE', k, need) end
  end
end

-- 1. cooldown
local cool = 0
for i = 1, nn do
  local v = tonumber(redis.call('GET', KEYS[K_COOL + i]) or '0')
  if v > now and v > cool then cool = v end
end
if cool > 0 then
  if cool - now > max_wait then bump('deferred', 1); return {'defer', fmt(cool)} end
  bump('blocked', 1)
  return {'retry', fmt(cool)}
end

-- 2. the slot: the earliest time free on every meter, or the booked one
for i = 1, nm do redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', fmt(now)) end
local slot = now
if booked then
  if booked > slot then slot = booked end
else
  for _ = 1, max_rounds do
    local moved = false
    for i = 1, nm do
      local f = fit(KEYS[i], slot, steps[i])
      if f > slot then slot = f; moved = true end
    end
    if not moved then break end
  end
end

-- 3. too far ahead: book it and leave
if slot - now > max_wait then
  commit_meters(slot)
  bump('deferred', 1)
  return {'book', fmt(slot)}
end

-- 4. leases
for i = 1, nl do
  local k = KEYS[K_LEASE + i]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  if redis.call('ZCARD', k) >= lease_limit[i] then
    local first = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    bump('blocked', 1)
    return {'retry', fmt(math.min(tonumber(first[2]), now + poll))}
  end
end

-- 5. commit
if not booked then commit_meters(slot) end
for i = 1, nl do
  local k = KEYS[K_LEASE + i]
  redis.call('ZADD', k, slot + lease_ttl[i], lease_id)
  redis.call('PEXPIRE', k, ms(slot + lease_ttl[i] - now) + 60000)
end
bump('sent', 1)
if slot > now then
  bump('waited', 1)
  bump('wait_ms', math.floor((slot - now) * 1000))
end
local bucket = math.floor(now / bucket_s)
for i = 1, nn do
  local k = KEYS[K_STATS + i]
  local seen = tonumber(redis.call('HGET', k, 'bucket') or '-1')
  if seen ~= bucket then
    local prev = 0
    if seen == bucket - 1 then prev = tonumber(redis.call('HGET', k, 'in_bucket') or '0') end
    redis.call('HSET', k, 'bucket', bucket, 'in_bucket', 0, 'in_previous', prev)
  end
  redis.call('HINCRBY', k, 'in_bucket', 1)
end
return {'go', fmt(slot)}
