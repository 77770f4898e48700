"""The Redis dead-letter store's scripts: each keeps the entries hash, the time index, the unreviewed
index and the groups (a zset of group key by count, one zset of entry ids per group, and each entry's
group key) consistent in one atomic call, so the groups are never recomputed by a scan.

Keys, in this order for every script: KEYS[1] entries hash, KEYS[2] index zset, KEYS[3] unreviewed
zset, KEYS[4] groups zset, KEYS[5] group-of hash. ARGV[1] is the prefix of the per-group zsets.
Only JSON decoding happens in Lua (cjson would re-encode [] as {}); entries are built in Python.
"""

from __future__ import annotations

_DROP = """
local function drop(id)
  local v = redis.call('HGET', KEYS[1], id)
  if not v then return false end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  local g = redis.call('HGET', KEYS[5], id)
  if g then
    redis.call('HDEL', KEYS[5], id)
    redis.call('ZREM', ARGV[1] .. g, id)
    if tonumber(redis.call('ZINCRBY', KEYS[4], -1, g)) <= 0 then redis.call('ZREM', KEYS[4], g) end
  end
  return v
end
"""

# ARGV[2] id, ARGV[3] entry JSON, ARGV[4] score, ARGV[5] group key, ARGV[6] "1": reviewed.
PUT = """
local id, gkey, score = ARGV[2], ARGV[5], ARGV[4]
local old = redis.call('HGET', KEYS[5], id)
if old ~= gkey then
  if old then
    redis.call('ZREM', ARGV[1] .. old, id)
    if tonumber(redis.call('ZINCRBY', KEYS[4], -1, old)) <= 0 then redis.call('ZREM', KEYS[4], old) end
  end
  redis.call('ZINCRBY', KEYS[4], 1, gkey)
  redis.call('HSET', KEYS[5], id, gkey)
end
redis.call('ZADD', ARGV[1] .. gkey, score, id)
redis.call('HSET', KEYS[1], id, ARGV[3])
redis.call('ZADD', KEYS[2], score, id)
if ARGV[6] == '1' then redis.call('ZREM', KEYS[3], id) else redis.call('ZADD', KEYS[3], score, id) end
return 1
"""

# Get and delete in one step, so of two concurrent removes (two operators redriving the same
# entry) only one gets it back. ARGV[2] id; returns the entry JSON or nil.
REMOVE_ONE = _DROP + "return drop(ARGV[2])\n"

# ARGV[2..] ids; returns how many this call removed (a concurrent remove may have taken some).
REMOVE_MANY = (
    _DROP
    + """
local n = 0
for i = 2, #ARGV do
  if drop(ARGV[i]) then n = n + 1 end
end
return n
"""
)

# Compare-and-set on one entry, written only if nobody changed or removed it meanwhile.
# ARGV[2] id, ARGV[3] the JSON read, ARGV[4] the new JSON, ARGV[5] "1": reviewed, ARGV[6] score.
REPLACE_IF_SAME = """
local cur = redis.call('HGET', KEYS[1], ARGV[2])
if not cur then return 0 end
if cur ~= ARGV[3] then return -1 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
if ARGV[5] == '1' then redis.call('ZREM', KEYS[3], ARGV[2]) else redis.call('ZADD', KEYS[3], ARGV[6], ARGV[2]) end
return 1
"""

# The one-off rebuild for a store written before the groups: count each entry that has no group
# yet. ARGV[2..] triples id, group key, score. An entry removed meanwhile is skipped, one put
# meanwhile already has its group; `reviewed` is read from the stored JSON (a review may have
# come in between). Returns how many entries it counted.
REBUILD = """
local n = 0
for i = 2, #ARGV, 3 do
  local id, gkey, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local v = redis.call('HGET', KEYS[1], id)
  if v and redis.call('HEXISTS', KEYS[5], id) == 0 then
    redis.call('HSET', KEYS[5], id, gkey)
    redis.call('ZINCRBY', KEYS[4], 1, gkey)
    redis.call('ZADD', ARGV[1] .. gkey, score, id)
    redis.call('ZADD', KEYS[2], score, id)
    if cjson.decode(v)['reviewed'] == true then
      redis.call('ZREM', KEYS[3], id)
    else
      redis.call('ZADD', KEYS[3], score, id)
    end
    n = n + 1
  end
end
return n
"""
