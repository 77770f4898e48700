-- The head of an ordering key's line ended (completed or dead-lettered): queue the next one.
-- KEYS[1] the key's list   KEYS[2] queue zset   KEYS[3] scheduled zset
-- ARGV[1] "<envelope id>.<redrive count>." of the job that ended   ARGV[2] now ms (scheduling clock)
-- ARGV[3] wall-clock ms (arq's)   ARGV[4] priority step ms   ARGV[5] arq job key prefix
-- ARGV[6] ms a queued job key outlives its due time
-- Idempotent: if the head is not that job (a re-run after a crash released it already), nothing
-- happens. A waiting job whose record expired is dropped, and the next one goes instead.
-- Returns the envelope id of the job queued next, "" if none waits, false if nothing was released.
local head = redis.call("LINDEX", KEYS[1], 0)
if not head then return false end
local head_job = string.match(head, "^%d+:%d+:(.*)$")
if string.sub(head_job, 1, #ARGV[1]) ~= ARGV[1] then return false end
redis.call("LPOP", KEYS[1])
local now = tonumber(ARGV[2])
while true do
  local nxt = redis.call("LINDEX", KEYS[1], 0)
  if not nxt then return "" end
  local priority, due, job = string.match(nxt, "^(%d+):(%d+):(.*)$")
  priority = tonumber(priority)
  due = tonumber(due)
  local job_key = ARGV[5] .. job
  if redis.call("EXISTS", job_key) == 1 then
    if due > now then
      redis.call("ZADD", KEYS[3], due, string.format("%02d:%s", priority, job))
    else
      redis.call("ZADD", KEYS[2], tonumber(ARGV[3]) - priority * tonumber(ARGV[4]), job)
    end
    redis.call("PEXPIRE", job_key, math.max(due - now, 0) + tonumber(ARGV[6]))
    return string.match(job, "^([^.]+)")
  end
  redis.call("LPOP", KEYS[1])
end
