-- cancel_all with dry_run = true: the listing as a sweep would read it, every name sorted as a
-- sweep would sort it, and no cancel sent (the fake's log holds list requests only). The summary
-- says so: dry_run = true, cancelled = 0, would_cancel = the names a sweep would cancel.
-- Contract: docs/contract.md, "cancel_all and what a listing holds".
local cjson = require "cjson"
local H = require "support.helper"

local function listing(names)
  local ops = {}
  for i, name in ipairs(names) do ops[i] = (cjson.encode { name = name }:gsub("\\/", "/")) end
  return '{"operations":[' .. table.concat(ops, ",") .. "]}"
end

local function calls_logged(server)
  local out = {}
  for _, e in ipairs(server:log()) do out[e.call] = (out[e.call] or 0) + 1 end
  return out
end

describe("cancel_all with dry_run", function()
  local fake = H.fake_client()
  local server, client
  before_each(function() server, client = fake.server, fake.client end)

  it("lists every page and sends no cancel", function()
    server:create_many(25, { done_after = 3600 })
    local s = client:cancel_all(H.PARENT, nil, { dry_run = true, page_size = 10 })
    assert.are.same({ list = 3 }, calls_logged(server))
    assert.are.equal(3, s.pages)
    assert.are.equal(3, s.requests)
    assert.are.equal(25, s.listed)
    assert.is_false(client:get(H.NAME .. "1001").done == true)
  end)

  it("says so in the summary: dry_run, cancelled 0, the names a sweep would cancel in would_cancel", function()
    server:create_many(3, { done_after = 3600 })
    local s = client:cancel_all(H.PARENT, nil, { dry_run = true })
    assert.is_true(s.dry_run)
    assert.are.equal(0, s.cancelled)
    assert.are.same({ H.NAME .. "1001", H.NAME .. "1002", H.NAME .. "1003" }, s.would_cancel)
    assert.are.equal(s.listed, s.cancelled + #s.would_cancel + #s.skipped + #s.failed)
    assert.is_nil(s.wait)
  end)

  it("lists what the sweep would: its filter, done=false by default", function()
    server:create_many(2, { done_after = 3600 })
    server:create { done = true }
    local s = client:cancel_all(H.PARENT, nil, { dry_run = true })
    assert.are.equal(2, #s.would_cancel)
    assert.matches("filter=done%%3Dfalse", server:log("list")[1].query)
    s = client:cancel_all(H.PARENT, nil, { dry_run = true, filter = "" })
    assert.are.equal(3, #s.would_cancel)
  end)

  it("skips names outside the parent as a sweep would, and fails a nameless entry", function()
    local victim = "projects/victim-project/locations/us-central1/operations/7"
    local a = server:create { done_after = 3600 }
    server:fault { match = "list", body = '{"operations":[{"done":false},' .. listing({ victim, a.name }):sub(16) }
    local s = client:cancel_all(H.PARENT, nil, { dry_run = true })
    assert.are.same({ a.name }, s.would_cancel)
    assert.are.same({ { name = victim, reason = "outside_parent" } }, s.skipped)
    assert.are.equal(1, #s.failed)
    assert.are.equal(3, s.listed)
    assert.are.equal(s.listed, s.cancelled + #s.would_cancel + #s.skipped + #s.failed)
    assert.are.same({ list = 1 }, calls_logged(server))
  end)

  it("reports progress in phase list, counting would_cancel", function()
    server:create_many(30, { done_after = 3600 })
    local calls = {}
    client:cancel_all(H.PARENT, nil, { dry_run = true, page_size = 10,
                                       progress = function(c) calls[#calls + 1] = c end })
    local last = calls[#calls]
    assert.are.equal("list", last.phase)
    assert.are.equal(30, last.would_cancel)
    assert.are.equal(0, last.cancelled)
    assert.are.equal(last.listed, last.would_cancel + last.skipped + last.failed)
  end)

  it("refuses wait = true with a ValueError naming both, before any request", function()
    local err = H.raises(client.cancel_all, client, H.PARENT, nil, { dry_run = true, wait = true })
    assert.are.equal("ValueError", H.tags(err))
    assert.matches("'wait'", err.message, 1, true)
    assert.matches("'dry_run'", err.message, 1, true)
    assert.are.equal(0, #server:log())
  end)

  it("refuses a dry_run that is not a boolean with a TypeError, before any request", function()
    local err = H.raises(client.cancel_all, client, H.PARENT, nil, { dry_run = "yes" })
    assert.are.equal("TypeError", H.tags(err))
    assert.matches("dry_run", err.message, 1, true)
    assert.are.equal(0, #server:log())
  end)

  it("leaves a sweep's summary without would_cancel", function()
    server:create_many(2, { done_after = 3600 })
    local s = client:cancel_all(H.PARENT, nil, { dry_run = false })
    assert.is_nil(s.would_cancel)
    assert.is_nil(s.dry_run)
    assert.are.equal(2, s.cancelled)
  end)
end)
