-- bench/jit_traces.lua: the instructions of an nginx worker's LuaJIT traces, trace by trace, per
-- request (diagnosis, issue 19 §4). Inputs, from one `make bench-openresty-callgrind` with
--   BENCH_OPENRESTY_KEEP=1 BENCH_OPENRESTY_JITDUMP=/tmp/jd BENCH_OPENRESTY_CGFLAGS=--dump-instr=yes
-- (and BENCH_OPENRESTY_RUNS=1): the worker's jit.dump (/tmp/jd.<pid>: each trace's machine code
-- with its addresses) and a callgrind dump of one round of the same worker (cg.<pid>.out.<n> in
-- the kept directory the bench prints). Every instruction callgrind counted in code of no object
-- file (LuaJIT's machine code) is given to the trace whose code holds its address; the jumps to a
-- trace's entry (the first address its dump lists: callgrind counts them as calls) tell how often
-- it was entered (a trace reached by a link from another, "-> N" in its parent's line, shows 0:
-- callgrind sees that jump as no call).
-- usage: lua5.4 bench/jit_traces.lua DUMP CALLGRIND_OUT REQUESTS
-- Prints, per trace, instructions and entries per request, with where it starts and how it ends
-- ("stitch": at a C function called through the Lua API). jit.dump slows a worker whose traces it
-- watches, so compare traces within one worker, not the totals of two.
local dump_file, cg_file, requests, event = arg[1], arg[2], tonumber(arg[3]), arg[4]
if not (dump_file and cg_file and requests) then
  io.stderr:write("usage: lua5.4 bench/jit_traces.lua DUMP CALLGRIND_OUT REQUESTS [EVENT]\n")
  os.exit(2)
end

-- The traces' address ranges: the last dump of each trace number wins (a trace flushed and made
-- again has new code).
local traces, starts = {}, {}
do
  local cur
  for line in io.lines(dump_file) do
    local no, where = line:match("^%-%-%-%- TRACE (%d+) start (.*)$")
    if no then
      starts[no] = where
    else
      no = line:match("^%-%-%-%- TRACE (%d+) mcode")
      if no then
        cur = { no = no }
      else
        local stop_no, how = line:match("^%-%-%-%- TRACE (%d+) stop(.*)$")
        if stop_no and cur and cur.lo then
          traces[stop_no] = { lo = cur.lo, hi = cur.hi + 16, first = cur.first,
                              info = (starts[stop_no] or "?") .. " ->" .. how }
          cur = nil
        elseif line:match("^%-%-%-%-") then
          cur = nil
        elseif cur then
          local hex = line:match("^(%x%x%x%x%x%x%x%x+)%s")
          if hex then
            local a = tonumber(hex, 16)
            cur.first = cur.first or a -- (the code's entry: the dump lists it first)
            if not cur.lo or a < cur.lo then cur.lo = a end
            if not cur.hi or a > cur.hi then cur.hi = a end
          end
        end
      end
    end
  end
end
local ranges = {}
for no, t in pairs(traces) do
  ranges[#ranges + 1] = { lo = t.lo, hi = t.hi, first = t.first, no = no, info = t.info }
end
table.sort(ranges, function(x, y) return x.lo < y.lo end)
local entry = {}
for _, r in ipairs(ranges) do entry[r.first] = r end
local function find(a) -- (binary search over the sorted ranges)
  local lo, hi = 1, #ranges
  while lo <= hi do
    local mid = (lo + hi) // 2
    local r = ranges[mid]
    if a < r.lo then hi = mid - 1 elseif a >= r.hi then lo = mid + 1 else return r end
  end
end

-- callgrind's cost lines (positions "instr line", compressed: +n, -n, * relative to the last);
-- the line after "calls=" is a call's inclusive cost, not counted
local cost, entries, unmapped = {}, {}, 0
do
  local ob, in_jit, last, skip = nil, false, 0, false
  local names = {}
  local column -- (EVENT's place among the cost columns: with --cache-sim=yes, e.g. D1mr; else the first)
  for line in io.lines(cg_file) do
    local c = line:sub(1, 1)
    if line:sub(1, 7) == "events:" then
      local i = 0
      column = 1
      for name in line:sub(8):gmatch("%S+") do
        i = i + 1
        if name == event then column = i end
      end
      if event and column == 1 and not line:sub(8):match("^%s*" .. event:gsub("%p", "%%%0") .. "%f[%s%z]") then
        io.stderr:write(("no event %s in %s (its events:%s)\n"):format(event, cg_file, line:sub(8)))
        os.exit(2)
      end
    elseif line:sub(1, 3) == "ob=" then
      local key, name = line:match("^ob=(%(%d+%))%s*(.*)$")
      if key then
        if name ~= "" then names[key] = name end
        ob = names[key]
      else
        ob = line:sub(4)
      end
    elseif line:sub(1, 3) == "fn=" then
      in_jit = ob == "???"
    elseif line:sub(1, 6) == "calls=" then
      skip = true
      -- (a jump into a trace from elsewhere shows as a call of it: its count, an entry)
      local n, target = line:match("^calls=(%d+)%s+0x(%x+)")
      local r = target and entry[tonumber(target, 16)]
      if r then entries[r] = (entries[r] or 0) + tonumber(n) end
    elseif c:match("[%d%+%-%*]") then
      local pos, rest = line:match("^(%S+)%s+(.*)$")
      if pos then
        local a
        if pos:sub(1, 2) == "0x" then a = tonumber(pos:sub(3), 16)
        elseif pos:sub(1, 1) == "+" then a = last + tonumber(pos:sub(2))
        elseif pos:sub(1, 1) == "-" then a = last - tonumber(pos:sub(2))
        elseif pos == "*" then a = last end
        if a then
          last = a
          if skip then
            skip = false
          elseif in_jit then
            local k, n = 0, 0 -- (rest: the line number, then the events' costs; absent ones are 0)
            for v in rest:gmatch("%S+") do
              if k == column then n = tonumber(v) or 0 end
              k = k + 1
            end
            local r = find(a)
            if r then
              cost[r] = (cost[r] or 0) + n
            else
              unmapped = unmapped + n
            end
          end
        end
      end
    end
  end
end

local list, total = {}, 0
for r, n in pairs(cost) do
  list[#list + 1] = r
  total = total + n
end
table.sort(list, function(x, y) return cost[x] > cost[y] end)
print(("machine code: %.0f %s per request in traces, %.0f elsewhere"):format(total / requests, event or "instructions",
  unmapped / requests))
for _, r in ipairs(list) do
  if cost[r] / requests >= 1 then
    print(("%8.0f  T%-4s entered %5.2f  %s"):format(cost[r] / requests, r.no, (entries[r] or 0) / requests, r.info))
  end
end
