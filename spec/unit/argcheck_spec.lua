-- wecom.argcheck: the messages, and that each error points at the code that
-- called the public function (the line below `where()` in each case).
local argcheck = require "wecom.argcheck"

describe("wecom.argcheck", function()
  local check = argcheck.new("wecom.thing:")

  -- a public function of a module, with a local helper in between for depth 1
  local function helper(v)
    check.need_string("run", "inner", v, 1)
  end
  local M = {}
  function M.run(kind, v)
    if kind == "direct" then
      check.need_string("run", "name", v)
    elseif kind == "helper" then
      helper(v)
    elseif kind == "usage" then
      check.usage("run", "something is off")
    end
    return "ran"
  end

  -- the error a call raises, and the line of this file it was made on
  local function raised(fn)
    local line = debug.getinfo(2, "l").currentline + 1
    local ok, err = pcall(fn)
    assert.is_false(ok)
    return err, line
  end

  local function at(line)
    return "argcheck_spec.lua:" .. line .. ": "
  end

  it("names the function and the argument, pointed at the caller", function()
    local err, line = raised(function()
      M.run("direct", 42)
    end)
    assert.truthy(err:find(at(line) .. "wecom.thing:run: name must be a non-empty string (got number)", 1, true), err)
  end)

  it("skips the helper frames it is told about", function()
    local err, line = raised(function()
      M.run("helper", "")
    end)
    assert.truthy(err:find(at(line) .. "wecom.thing:run: inner must be a non-empty string (got string)", 1, true), err)
  end)

  it("raises a free-form usage message", function()
    local err, line = raised(function()
      M.run("usage")
    end)
    assert.truthy(err:find(at(line) .. "wecom.thing:run: something is off", 1, true), err)
  end)

  it("returns the value when it is fine", function()
    assert.equal("ran", M.run("direct", "x"))
    assert.equal("v", check.need_string("f", "a", "v"))
    assert.is_nil(check.opt_string("f", "a", nil))
    assert.equal(3, check.need_int("f", "a", 3))
    assert.equal(1, check.opt_int("f", "a", 1, 1))
    assert.is_false(check.opt_bool("f", "a", false))
    local t = {}
    assert.equal(t, check.need_table("f", "a", t))
  end)

  it("rejects what each check excludes, with its own wording", function()
    assert.has_error(function() check.opt_string("f", "a", "") end,
      "wecom.thing:f: a must be a non-empty string (got string)")
    assert.has_error(function() check.need_int("f", "a", 1.5) end, "wecom.thing:f: a must be an integer (got number)")
    assert.has_error(function() check.opt_int("f", "a", 0, 1) end,
      "wecom.thing:f: a must be an integer >= 1 (got number)")
    assert.has_error(function() check.opt_int("f", "a", -1) end,
      "wecom.thing:f: a must be an integer >= 0 (got number)")
    assert.has_error(function() check.opt_bool("f", "a", 0) end, "wecom.thing:f: a must be a boolean (got number)")
    assert.has_error(function() check.need_table("f", "a", "x") end, "wecom.thing:f: a must be a table (got string)")
    assert.has_error(function() check.fail("f", "a", "blue", true) end, "wecom.thing:f: a must be blue (got boolean)")
  end)
end)
