-- Runs bin/wecom as a subprocess, the way a user's shell does.
--
--   local cli = require "helpers.cli"
--   local env = cli.env(info, fx, app, { WECOM_TOKEN_DIR = dir })   -- WECOM_* for an emulator app
--   local r = cli.run({ "corps", "--chain", "Ch1" }, env)           -- r.status, r.out, r.err
--   cli.run(args, env, { stdin = "text", tty = true })              -- under a pseudo-terminal (script)
--   cli.hooks("wecom-cli-x", "/tokens", function(env, dir, fx, system, info) ... end)   -- in a describe

local child = require "helpers.child"
local sh = require "helpers.sh"

local _M = {}

local quote = sh.quote

-- env(info, fx, app [, extra]) -> the environment for an app of fx against the emulator info
function _M.env(info, fx, app, extra)
    local e = {
        WECOM_CORPID = fx.upstream.corpid, WECOM_SECRET = app.secret, WECOM_AGENTID = string.format("%d", app.agentid),
        WECOM_BASE_URL = info.base_url, WECOM_CA_FILE = info.ca_file,
        -- no config file of the machine's user, no token directory of theirs
        HOME = "/nonexistent", XDG_CONFIG_HOME = "", XDG_CACHE_HOME = "",
    }
    for k, v in pairs(extra or {}) do
        e[k] = v
    end
    return e
end

-- hooks(name, token_dir, on_each), inside a describe: the emulator's hooks
-- (helpers.emulator), and before each test a new directory (sh.tmpdir(name),
-- removed after the test) and the system app's environment with its token
-- store at dir .. token_dir: on_each(env, dir, fixture, system app, info)
function _M.hooks(name, token_dir, on_each)
    local busted = require "busted"
    local fx, system, info, dir
    require("helpers.emulator").hooks(function(f, s, _, i)
        fx, system, info = f, s, i
    end)
    busted.before_each(function()
        dir = sh.tmpdir(name)
        on_each(_M.env(info, fx, system, { WECOM_TOKEN_DIR = dir .. token_dir }), dir, fx, system, info)
    end)
    busted.after_each(function()
        os.execute("rm -rf " .. quote(dir))
    end)
end

-- run(args, env [, { stdin =, tty = }]) -> { status, out, err }
function _M.run(args, env, o)
    o = o or {}
    local tmp = os.tmpname()
    local parts = { "env -i PATH=" .. quote(os.getenv("PATH") or "/usr/bin:/bin") }
    -- make check-asan: the sanitized interpreter reads these at start-up
    for _, name in ipairs { "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS" } do
        if os.getenv(name) then
            parts[#parts + 1] = name .. "=" .. quote(os.getenv(name))
        end
    end
    for k, v in pairs(env or {}) do
        parts[#parts + 1] = k .. "=" .. quote(v)
    end
    parts[#parts + 1] = child.interpreter
    parts[#parts + 1] = "bin/wecom"
    for _, a in ipairs(args) do
        parts[#parts + 1] = quote(a)
    end
    local cmd = table.concat(parts, " ")
    if o.stdin then
        sh.write_file(tmp .. ".in", o.stdin)
        cmd = cmd .. " <" .. quote(tmp .. ".in")
    else
        cmd = cmd .. " </dev/null"
    end
    if o.tty then
        -- script(1) gives the command a pseudo-terminal; its own output is the terminal's
        cmd = "script -qec " .. quote(cmd) .. " /dev/null"
    end
    local status = sh.capture(cmd .. " >" .. quote(tmp .. ".out") .. " 2>" .. quote(tmp .. ".err")
        .. "; echo $?")
    local r = { status = tonumber(status:match("(%d+)%s*$")), out = sh.read_file(tmp .. ".out") or "",
                err = sh.read_file(tmp .. ".err") or "" }
    os.remove(tmp)
    os.remove(tmp .. ".in")
    os.remove(tmp .. ".out")
    os.remove(tmp .. ".err")
    return r
end

-- json(r) -> the decoded stdout of a --format json run
function _M.json(r)
    local value, err = require("wecom.json").decode(r.out)
    assert(value ~= nil, "stdout is not JSON (" .. tostring(err) .. "): " .. r.out .. r.err)
    return value
end

return _M
