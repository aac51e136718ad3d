-- Child Lua processes for multi-process specs: the same interpreter and the
-- same module paths as the spec that spawns them.
--
--   local child = require "helpers.child"
--   local p = child.spawn(code, args [, env])   -- p.pid; p:line() reads a line; p:wait() -> rest
--   local p = child.spawn_script(path, args [, env])
--   local out = child.run(code, args [, env])   -- runs to the end, returns its output

local sh = require "helpers.sh"

local _M = {}

local quote = sh.quote
_M.quote = quote

-- make check-asan runs the specs in a sanitized interpreter; children must use
-- it too (and C test programs must be built with the same sanitizers)
_M.interpreter = os.getenv("WECOM_SPEC_LUA")
    or (rawget(_G, "jit") and "luajit" or "lua" .. _VERSION:match("%d+%.%d+"))
-- headers and library to build a C program against this runtime
_M.lua_include = rawget(_G, "jit") and "/usr/include/luajit-2.1"
    or "/usr/include/lua" .. _VERSION:match("%d+%.%d+")
_M.lua_lib = rawget(_G, "jit") and "-lluajit-5.1" or "-llua" .. _VERSION:match("%d+%.%d+")
_M.cflags = os.getenv("WECOM_SPEC_CFLAGS") or ""

-- The shell command running script (a file) with args, in this runtime;
-- env: extra environment variables (kept out of the argument list).
function _M.command(script, args, env)
    local parts = { "LUA_PATH=" .. quote(package.path), "LUA_CPATH=" .. quote(package.cpath) }
    for k, v in pairs(env or {}) do
        parts[#parts + 1] = k .. "=" .. quote(v)
    end
    parts[#parts + 1] = "exec"
    parts[#parts + 1] = _M.interpreter
    parts[#parts + 1] = quote(script)
    for _, a in ipairs(args or {}) do
        parts[#parts + 1] = quote(a)
    end
    return table.concat(parts, " ")
end

local Child = {}
Child.__index = Child

function Child:line()
    return self.pipe:read("*l")
end

-- Reads the rest of the output and waits for the process to end.
function Child:wait()
    local out = self.pipe:read("*a")
    self.pipe:close()
    if self.script then
        os.remove(self.script)
    end
    return out
end

-- spawn_script(path, args, env) -> child (its pid known: the shell execs Lua)
function _M.spawn_script(path, args, env)
    local pipe = assert(io.popen("echo $$; " .. _M.command(path, args, env) .. " 2>&1", "r"))
    local pid = tonumber(pipe:read("*l"))
    return setmetatable({ pipe = pipe, pid = pid }, Child)
end

-- spawn(code, args, env) -> child running code from a temporary file
function _M.spawn(code, args, env)
    local script = os.tmpname()
    sh.write_file(script, code)
    local c = _M.spawn_script(script, args, env)
    c.script = script
    return c
end

function _M.run(code, args, env)
    return _M.spawn(code, args, env):wait()
end

return _M
