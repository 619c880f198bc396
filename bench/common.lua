-- bench/common.lua: what the benchmark scripts share -- running a command, reading this process's
-- memory, and writing one section of a results file (run from the repository's root:
-- require "bench.common").
local M = {}

--- sh(cmd) -> what cmd printed (stdout and stderr).
function M.sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("*a")
  p:close()
  return out
end

--- status_kb(field) -> a kB field of /proc/self/status ("VmRSS", "VmHWM"), 0 when absent.
function M.status_kb(field)
  local f = io.open("/proc/self/status")
  local kb = 0
  for line in f:lines() do
    local v = line:match("^" .. field .. ":%s+(%d+)")
    if v then kb = tonumber(v) end
  end
  f:close()
  return kb
end

--- median(t) -> the median of the numbers of t, its least and its greatest (t is sorted in place;
--- of an even count, the lower middle one).
function M.median(t)
  table.sort(t)
  return t[math.floor((#t + 1) / 2)], t[1], t[#t]
end

--- write_section(path, heading, section): section (starting with "## heading") replaces the one
--- of that heading in the file at path, or is appended; then it is printed.
function M.write_section(path, heading, section)
  local f = io.open(path)
  local text = f and f:read("*a") or "# Benchmark results\n"
  if f then f:close() end
  local head = "\n## " .. heading .. "\n"
  local s, e = text:find(head .. ".-\n## ")
  if s then
    text = text:sub(1, s) .. section .. text:sub(e - 3)
  else
    s = text:find(head, 1, true)
    if s then text = text:sub(1, s) end
    text = text:gsub("\n*$", "\n\n") .. section
  end
  f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  io.write(section)
end

return M
