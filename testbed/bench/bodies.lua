-- wrk script: every request posts the next prepared form body, one body per line of the
-- file named after `--`; each wrk thread takes every n-th line. A thread that runs out of
-- bodies sends an empty one, which the server refuses: the benchmark counts it as a failure
-- and says the run needs more bodies.
local thread_count = 0

function setup(thread)
  thread:set("offset", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  bodies = {}
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  stride = tonumber(args[2])
  position = offset + 1
end

function request()
  local body = bodies[position] or ""
  position = position + stride
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
