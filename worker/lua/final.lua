-- Count a job's outcome once, however many times a crashed worker made it run.
-- KEYS[1] final marker   KEYS[2] stats hash
-- ARGV[1] marker ttl s   ARGV[2..] stats fields to increment
if redis.call("SET", KEYS[1], "1", "NX", "EX", ARGV[1]) then
  for i = 2, #ARGV do redis.call("HINCRBY", KEYS[2], ARGV[i], 1) end
  return 1
end
return 0
