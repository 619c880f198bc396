-- Load from every worker of the nginx of support/openresty.lua, for spec/09_hosts_rate_shared_spec.lua
-- and spec/09_hosts_rate_redis_spec.lua (M.load posts a job and waits for the reports):
-- init_worker_by_lua_block { require("support.rate_worker").start() } starts, in each worker, a
-- timer that watches the dict `vertexops` for a job (key "rate job": JSON {run, at, names, threads,
-- duration, rate}). Each worker runs a job once, from `at` (ngx.now()'s clock, the same in every
-- worker): `threads` light threads call get on
-- names[worker id + 1] through one client with option rate until `duration` seconds have passed
-- (each call's timeout is what is left: a thread whose call ends in TimeoutError stops there, its
-- next permit would come after the run's end), then stores {pid, ok, errors = {tag = count}} as
-- JSON at "rate done <run> <worker id>".
-- M.post starts a run, M.reports reads what the workers reported (the bench, bench/fleet_shared.lua,
-- and M.load, the specs', both use them).
local cjson = require "cjson.safe"
local vertexops = require "vertexops"

local ngx = rawget(_G, "ngx")
local M = {}

local function run(job)
  local dict = ngx.shared.vertexops
  local id = ngx.worker.id()
  local name = job.names[id + 1]
  local c = vertexops.client { token = "test-token", rate = job.rate }
  ngx.update_time()
  if job.at > ngx.now() then ngx.sleep(job.at - ngx.now()) end -- every worker starts then
  ngx.update_time()
  local stop = ngx.now() + job.duration
  local out = { pid = ngx.worker.pid(), ok = 0, errors = {} }
  local threads = {}
  for t = 1, job.threads do
    threads[t] = ngx.thread.spawn(function()
      while true do
        ngx.update_time()
        local left = stop - ngx.now()
        if left <= 0.01 then return end
        local ok, err = pcall(c.get, c, name, nil, { timeout = left })
        if ok then
          out.ok = out.ok + 1
        else
          local tag = type(err) == "table" and err.tags and err.tags[1] or tostring(err)
          out.errors[tag] = (out.errors[tag] or 0) + 1
          -- the call's timeout is the run's end: a thread that calls again would only spin on
          -- TimeoutErrors until then, taking the CPU the threads still sending need
          if tag == "TimeoutError" then return end
        end
      end
    end)
  end
  for _, th in ipairs(threads) do ngx.thread.wait(th) end
  c:close()
  dict:set("rate done " .. job.run .. " " .. id, cjson.encode(out))
end

local last = 0
local function watch(premature)
  if premature then return end
  local job = cjson.decode(ngx.shared.vertexops:get("rate job") or "null")
  if type(job) == "table" and job.run > last then
    last = job.run
    local ok, err = pcall(run, job)
    if not ok then
      ngx.shared.vertexops:set("rate done " .. job.run .. " " .. ngx.worker.id(), cjson.encode { raised = tostring(err) })
    end
  end
  ngx.timer.at(0.05, watch)
end

function M.start()
  ngx.timer.at(0, watch)
end

--- On the spec's (or the bench's) side: starts run job.run {run, names, threads, duration, rate}
--- in app's workers, 0.3 s from now (every worker's timer has seen the job by then). A fleet's run
--- starts against a fresh quota (the caller set the fake's quota again: its windows are empty),
--- so the window of a rate shared through a dict starts empty too: the dict is flushed. Without
--- that, the last requests of the run before still held places in the dict's window (runs follow
--- each other within a window) that the fake had forgotten: the new run's first window was cut
--- short and those places came back out of step with the rest, at the end of the run too (the
--- fill of bench/fleet_shared.lua's dict row fell from 0.97 to 0.77 on every run but the first).
function M.post(app, job)
  local json = require "cjson"
  app:result([[
    local json = require "cjson"
    local job = json.decode(args.job)
    if job.rate == json.null then job.rate = nil end
    local dict = job.rate and job.rate.shared_dict and ngx.shared[job.rate.shared_dict]
    if dict then dict:flush_all() end
    ngx.update_time()
    job.at = ngx.now() + 0.3 -- every worker's timer has seen the job by then
    ngx.shared.vertexops:set("rate job", json.encode(job))]], { job = json.encode {
    run = job.run, names = job.names, threads = job.threads, duration = job.duration, rate = job.rate or json.null } })
end

--- What app's workers (0 to workers - 1) reported of run number id: a table by worker id + 1,
--- false for a worker not done yet; and whether all are done.
function M.reports(app, id, workers)
  local done = app:result([[
    local out = {}
    for i = 0, args.workers - 1 do out[i + 1] = ngx.shared.vertexops:get("rate done " .. args.run .. " " .. i) or false end
    return out]], { workers = workers, run = id })
  local all = true
  for i = 1, workers do all = all and done[i] ~= false end
  return done, all
end

--- On the spec's side: creates one operation of server's per worker, sets server's quota
--- {requests, per}, posts the job {run, threads, duration, rate} to app's workers (numbered 0 to
--- workers - 1) and waits for them all (H.within bounds the wait by duration). Returns the reports
--- (by worker id + 1, none of them with an error raised) and the operations' names.
function M.load(app, server, job)
  local json, H, socket, assert = require "cjson", require "support.helper", require "socket", require "luassert"
  local names = {}
  for i = 1, job.workers do names[i] = server:create({}).name end
  server:quota { requests = job.requests, per = job.per }
  M.post(app, { run = job.run, names = names, threads = job.threads, duration = job.duration, rate = job.rate })
  local t0 = socket.gettime()
  local done, all
  repeat
    socket.sleep(0.2)
    done, all = M.reports(app, job.run, job.workers)
  until all or socket.gettime() - t0 > job.duration + 10
  H.within(socket.gettime() - t0, job.duration, "the load")
  local reports = {}
  for i = 1, job.workers do
    reports[i] = json.decode(done[i])
    assert.is_nil(reports[i].raised, reports[i].raised)
  end
  return reports, names
end

return M
