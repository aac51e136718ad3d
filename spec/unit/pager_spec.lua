-- wecom.pager: lazy cursor iteration, driven by a fake fetch over an
-- in-memory list (pure logic; the real endpoints are in spec/integration).

local pager = require "wecom.pager"
local errors = require "wecom.errors"

-- A fake cursor API over `items`: pages of `size`, cursor = next index as a
-- string, "" at the end (like list_app_share_info).  Records every call.
local function fake_api(items, size)
  local api = { calls = {} }
  function api.fetch(cursor)
    api.calls[#api.calls + 1] = cursor == nil and "<first>" or cursor
    local start = cursor and tonumber(cursor) or 1
    local page = {}
    for i = start, math.min(start + size - 1, #items) do
      page[#page + 1] = items[i]
    end
    local next_index = start + size
    return page, next_index <= #items and tostring(next_index) or ""
  end
  return api
end

local function range(n)
  local t = {}
  for i = 1, n do t[i] = "item" .. i end
  return t
end


describe("wecom.pager", function()

  describe("iterate()", function()
    it("yields every item of every page in order", function()
      local items = range(27)
      local api = fake_api(items, 5)
      assert.same(items, pager.collect(pager.iterate(api.fetch)))
      assert.same({ "<first>", "6", "11", "16", "21", "26" }, api.calls)
    end)

    it("is lazy: fetches a page only when the previous one is used up", function()
      local api = fake_api(range(12), 5)
      local it = pager.iterate(api.fetch)
      assert.equal(0, #api.calls)
      assert.equal("item1", it())
      assert.equal(1, #api.calls)
      for _ = 2, 5 do it() end
      assert.equal(1, #api.calls)
      assert.equal("item6", it())
      assert.equal(2, #api.calls)
    end)

    it("stops on a nil cursor as well as on an empty one", function()
      local calls = 0
      local it = pager.iterate(function()
        calls = calls + 1
        return { "a", "b" }, nil
      end)
      assert.same({ "a", "b" }, pager.collect(it))
      assert.equal(1, calls)
    end)

    it("ends cleanly on an empty first page", function()
      local it = pager.iterate(function() return {}, "" end)
      assert.is_nil(it())
      assert.is_nil(it())
    end)

    it("follows a cursor past an empty page that says there is more", function()
      local pages = { [""] = { {}, "c2" }, c2 = { { "x" }, "" } }
      local it = pager.iterate(function(cursor)
        local p = pages[cursor or ""]
        return p[1], p[2]
      end)
      assert.same({ "x" }, pager.collect(it))
    end)

    it("raises the fetch error object in the middle of the walk", function()
      local api = fake_api(range(12), 5)
      local failure = errors.new("api", "system busy", { errcode = -1, path = "/x" })
      local it = pager.iterate(function(cursor)
        if cursor == "6" then return nil, failure end
        return api.fetch(cursor)
      end)
      local got = {}
      local ok, err = pcall(function()
        for item in it do got[#got + 1] = item end
      end)
      assert.is_false(ok)
      assert.equal(failure, err)          -- the very object, not a string
      assert.equal(5, #got)               -- the first page was delivered
      -- once failed, it keeps failing rather than pretending to be done
      assert.has_error(function() it() end)
    end)

    it("raises a decode error when the cursor does not advance", function()
      local it = pager.iterate(function() return { "same" }, "c1" end, "loop")
      local ok, err = pcall(pager.collect, it)
      assert.is_false(ok)
      assert.equal("decode", err.kind)
      assert.matches("loop", tostring(err))
    end)

    it("raises a decode error on endless empty pages", function()
      local n = 0
      local it = pager.iterate(function()
        n = n + 1
        return {}, "c" .. n
      end)
      local ok, err = pcall(pager.collect, it)
      assert.is_false(ok)
      assert.equal("decode", err.kind)
    end)

    it("raises a decode error when a page is not a table", function()
      local it = pager.iterate(function() return "oops", "" end)
      local ok, err = pcall(it)
      assert.is_false(ok)
      assert.equal("decode", err.kind)
    end)

    it("rejects a fetch that is not a function", function()
      assert.has_error(function() pager.iterate("nope") end,
        "wecom.pager.iterate: fetch must be a function (got string)")
    end)
  end)

  describe("concat()", function()
    it("chains iterators and skips empty ones", function()
      local sources = {
        pager.iterate(function() return { 1, 2 }, "" end),
        pager.iterate(function() return {}, "" end),
        pager.iterate(function() return { 3 }, "" end),
      }
      local i = 0
      local it = pager.concat(function() i = i + 1; return sources[i] end)
      assert.same({ 1, 2, 3 }, pager.collect(it))
    end)
  end)
end)
