-- Waiting without blocking the host: a frame loop that keeps drawing while operations are waited on.
--   lua5.4 examples/coroutine_wait.lua OPERATION_NAME [OPERATION_NAME ...]
--
-- The pattern: run each wait in a coroutine and pass a `sleep` that yields instead of sleeping.
-- The host resumes the coroutine once the time asked for has passed; meanwhile its loop runs.
-- (Each HTTP exchange itself still runs to completion; see the README for the non-blocking API.)
local vertexops = require "vertexops"
local core = require "vertexops.core"

local names = { ... }
assert(#names > 0, "usage: coroutine_wait.lua OPERATION_NAME [OPERATION_NAME ...]")

local tasks = {}
for _, name in ipairs(names) do
  local co = coroutine.create(function()
    return vertexops.wait(name, nil, {
      ca_file = os.getenv("VERTEXOPS_CA_FILE"),
      timeout = 300,
      strategy = "poll",                             -- short GETs; no long-poll holding a request open
      sleep = function(s) coroutine.yield(s) end,    -- hand the wait back to the host
    })
  end)
  tasks[#tasks + 1] = { name = name, co = co, wake = 0 }
end

local frames, left = 0, #tasks
while left > 0 do
  local now = core.clock()
  for _, t in ipairs(tasks) do
    if not t.done and now >= t.wake then
      local ok, res = coroutine.resume(t.co)
      if not ok then
        print(t.name .. ": " .. tostring(res))
        t.done, left = true, left - 1
      elseif coroutine.status(t.co) == "dead" then
        print(t.name .. ": done after " .. frames .. " frames")
        t.done, left = true, left - 1
      else
        t.wake = now + res -- res: the seconds the wait asked to sleep
      end
    end
  end
  frames = frames + 1
  core.sleep(1 / 60) -- the rest of the frame: drawing, input, ...
end
