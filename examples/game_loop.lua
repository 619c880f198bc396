-- A host with a frame loop (60 frames per second) cancels 100 operations without blocking a frame.
--   lua5.4 examples/game_loop.lua projects/P/locations/L [COUNT]
-- Every call is started with client:start(); once a frame client:poll() steps them all (req:poll()
-- steps one). Neither ever blocks: the transfers run on libcurl's multi interface, and retries and
-- waits "sleep" by returning until their time has come.
local vertexops = require "vertexops"
local core = require "vertexops.core"

local parent = assert(arg[1], "usage: game_loop.lua projects/P/locations/L [COUNT]")
local count = tonumber(arg[2] or "100")
local FRAME = 1 / 60
local STARTS_PER_FRAME = 20 -- a budget: starting a transfer costs libcurl some CPU on the next step

local client = vertexops.client { ca_file = os.getenv("VERTEXOPS_CA_FILE") }
local listing = client:start("list", parent, nil, { filter = "done=false", page_size = count })
local queue, cancels, cancelled, failed = {}, {}, 0, 0
local frames, worst = 0, 0

repeat
  local start = core.clock()
  -- this frame's share of the work: step every request once
  client:poll()
  if listing then
    local listed, page = listing:result()
    if listed then
      if not listing.ok then error(page, 0) end
      for _, op in ipairs(page.operations) do queue[#queue + 1] = op.name end
      listing = nil
    end
  end
  for _ = 1, math.min(STARTS_PER_FRAME, #queue) do
    cancels[#cancels + 1] = client:start("cancel", table.remove(queue))
  end
  for i = #cancels, 1, -1 do
    local req = cancels[i]
    if req:result() then
      if req.ok then cancelled = cancelled + 1 else failed = failed + 1 end
      table.remove(cancels, i)
    end
  end
  -- ... the game would draw here ...
  local spent = core.clock() - start
  if spent > worst then worst = spent end
  frames = frames + 1
  core.sleep(math.max(0, FRAME - spent))
until not listing and #queue == 0 and #cancels == 0

print(("cancelled %d operations (%d failed) in %d frames; worst frame %.2f ms of %.1f ms")
  :format(cancelled, failed, frames, worst * 1000, FRAME * 1000))
