-- vertexops cancel-all --kind (a collection of jobs), in-process (vertexops.cli.main with captured
-- output and an injected terminal): on a terminal the question counts jobs, not operations, and
-- names the collection; --dry-run lists the collection and cancels nothing.
local cjson = require "cjson"
local H = require "support.helper"
local cli = require "vertexops.cli"

local capture = H.capture

describe("vertexops cancel-all --kind (in-process)", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- runs cancel-all PARENT argv on a terminal answering line; returns stdout, stderr, status
  local function main(argv, line)
    local out, err = capture(), capture()
    local stdin = { read = function() return line end }
    local args = { "cancel-all", H.PARENT }
    for _, a in ipairs(argv) do args[#args + 1] = a end
    local status = cli.main(args, { stdout = out, stderr = err, stdin = stdin, isatty = function() return true end,
      options = H.opts(server) })
    return out.text, err.text, status
  end

  it("asks with the count of jobs and their collection, then cancels them", function()
    server:create_job {}
    server:create_job {}
    local out, err, status = main({ "--kind", "customJobs" }, "y")
    assert.are.equal(0, status, err)
    assert.matches("cancel 2 jobs (customJobs) under " .. H.PARENT .. "? [y/N] ", err, 1, true)
    assert.matches("listed 2, cancelled 2, failed 0", out, 1, true)
    assert.are.equal(2, #server:log("cancel"))
  end)

  it("says 'job' for one", function()
    server:create_job { collection = "tuningJobs" }
    local _, err = main({ "--kind", "tuningJobs" }, "n")
    assert.matches("cancel 1 job (tuningJobs) under " .. H.PARENT .. "? [y/N] ", err, 1, true)
    assert.are.equal(0, #server:log("cancel"))
  end)

  it("with --dry-run lists the collection and cancels nothing, without asking", function()
    local job = server:create_job {}
    local out, err, status = main({ "--kind", "customJobs", "--dry-run", "--json" }, nil)
    assert.are.equal(0, status, err)
    local doc = cjson.decode(out)
    assert.are.same({ job.name }, doc.would_cancel)
    assert.are.equal(doc.listed, #doc.would_cancel + #doc.skipped + #doc.failed)
    assert.are.equal(0, #server:log("cancel"))
    assert.are.equal(H.PARENT .. "/customJobs", server:log("list")[1].name)
  end)
end)
