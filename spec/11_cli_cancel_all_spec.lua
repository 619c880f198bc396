-- vertexops cancel-all, in-process (vertexops.cli.main with a context of our own: captured
-- output, a terminal or not, a scripted stdin): skipped names are printed and are not a failure
-- (exit 0), --dry-run lists and sends no cancel, and on a terminal the command asks first.
local cjson = require "cjson"
local H = require "support.helper"

local cli = require "vertexops.cli"

local function capture()
  local s = { text = "" }
  function s.write(self, ...)
    self.text = self.text .. table.concat({ ... })
    return self
  end
  function s.flush() end
  return s
end

-- Google's answer to a cancel of an operation that cannot be cancelled.
local NOT_CANCELLABLE = { match = "cancel", status = 400, content_type = "application/json",
  body = '{"error":{"code":400,"message":"Operation is not cancellable.","status":"FAILED_PRECONDITION"}}' }

describe("vertexops cancel-all (in-process)", function()
  local fake = H.fake_server()
  local server
  before_each(function() server = fake.server end)

  -- runs main with cancel-all PARENT and argv; returns stdout, stderr, status. ctx: fields of the
  -- context over the defaults (not a terminal; the fake's endpoint, CA file and token)
  local function main(argv, ctx)
    local out, err = capture(), capture()
    local c = { stdout = out, stderr = err, isatty = function() return false end, options = H.opts(server) }
    for k, v in pairs(ctx or {}) do c[k] = v end
    local args = { "cancel-all", H.PARENT }
    for _, a in ipairs(argv or {}) do args[#args + 1] = a end
    local status = cli.main(args, c)
    return out.text, err.text, status
  end

  describe("skipped names", function()
    it("exit 0 when a cancel was refused FAILED_PRECONDITION and nothing failed", function()
      server:create_many(3, { done_after = 3600 })
      server:fault(NOT_CANCELLABLE)
      local out, err, status = main { "--max-in-flight", "1" }
      assert.are.equal(0, status, err)
      assert.matches("listed 3, cancelled 2, failed 0, skipped 1", out, 1, true)
      assert.matches("skipped, not cancellable: already done, or not a cancellable kind (FAILED_PRECONDITION):\n  "
        .. H.NAME .. "1001", out, 1, true)
    end)

    it("lists them in --json with their reason and error", function()
      server:create_many(2, { done_after = 3600 })
      server:fault(NOT_CANCELLABLE)
      local out, err, status = main { "--max-in-flight", "1", "--json" }
      assert.are.equal(0, status, err)
      local doc = cjson.decode(out)
      assert.are.equal(1, doc.cancelled)
      assert.are.equal(H.NAME .. "1001", doc.skipped[1].name)
      assert.are.equal("failed_precondition", doc.skipped[1].reason)
      assert.are.equal("FAILED_PRECONDITION", doc.skipped[1].error.status)
      assert.are.equal(doc.listed, doc.cancelled + #doc.skipped + #doc.failed)
    end)

    it("still exits with the failure's status when something else failed", function()
      server:create_many(3, { done_after = 3600 })
      server:fault(NOT_CANCELLABLE)
      server:fault { match = "cancel", status = 404 }
      local out, err, status = main { "--max-in-flight", "1" }
      assert.are.equal(4, status, err)
      assert.matches("listed 3, cancelled 1, failed 1, skipped 1", out, 1, true)
    end)
  end)
end)
