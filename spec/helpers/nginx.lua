-- Specs' handle on a real nginx (Debian's nginx + libnginx-mod-http-lua, or
-- OpenResty) running a given configuration in a temporary prefix.
--
--   local nginx = require "helpers.nginx"
--   local site = nginx.start{ conf = nginx.conf{ servers = { { text = locations } } },
--                             files = { ["conf.d/x.conf"] = text }, env = { NAME = value } }
--   site.port, site.prefix, site:url("/path")
--   site:request("GET", "/path" [, { body =, headers = }]) -> status, body, headers
--   site:error_lines([expected]) -> the [error]/[crit]/[alert]/[emerg] lines of
--       error.log (less those for which expected(line) is true)
--   site:stop()
--   nginx.echo_location("/hook") -> a location answering what it got, as JSON
--
-- nginx.conf{...} builds the conf from the one skeleton (wecom.emulator.conf)
-- with a spec's own parts.  The text start gets may use ${port} (and ${port2}
-- for a second server), ${prefix}, ${root}, ${lua_path}, ${lua_cpath},
-- ${modules} and ${user}; nginx.example{...} renders
-- examples/openresty/nginx.conf for a spec (port, workers, trusted CA, paths
-- to this checkout; warmup = false drops its init_worker token warm-up).

local sh = require "helpers.sh"
local conf = require "wecom.emulator.conf"

local _M = {}

local quote, run, capture, read_file, write_file = sh.quote, sh.run, sh.capture, sh.read_file, sh.write_file
_M.quote = quote
_M.read_file = read_file

local ports = require "helpers.ports"
local random_int = ports.random_int

local function sleep(seconds)
    run("sleep " .. seconds)
end

local function absolute(path)
    if path:sub(1, 1) == "/" then
        return path
    end
    local cwd = os.getenv("PWD") or capture("pwd"):gsub("%s+$", "")
    return ((cwd .. "/" .. path):gsub("/%./", "/"))
end

function _M.binary()
    local bin = os.getenv("WECOM_NGINX")
    if bin and bin ~= "" then
        return bin
    end
    for _, name in ipairs { "openresty", "nginx" } do
        local out = capture("command -v " .. name .. " 2>/dev/null"):gsub("%s+$", "")
        if out ~= "" then
            return out
        end
    end
    return "/usr/sbin/nginx"
end

-- The load_module paths this nginx needs for lua-nginx-module (none for
-- OpenResty), asked once.
local lua_modules
function _M.modules()
    if not lua_modules then
        lua_modules = conf.lua_modules(capture(quote(_M.binary()) .. " -V 2>&1"), os.getenv("WECOM_NGINX_MODULES"))
    end
    return lua_modules
end

local function module_lines()
    local lines = {}
    for i, path in ipairs(_M.modules()) do
        lines[i] = "load_module " .. path .. ";\n"
    end
    return table.concat(lines)
end

local function as_root()
    return capture("id -u"):match("^0%s*$") ~= nil
end

-- Where this checkout's Lua files and LuaJIT build of wecom.core are.
function _M.paths()
    local root = absolute("lua")
    local core = package.searchpath and package.searchpath("wecom.core", package.cpath)
    local build = core and core:match("^(.*)/[^/]+/wecom/core%.so$")
    local jit_dir = build and absolute(build .. "/luajit") or absolute("build/luajit")
    assert(read_file(jit_dir .. "/wecom/core.so"), "no LuaJIT build of wecom.core in " .. jit_dir)
    return {
        lua_path = root .. "/?.lua;" .. root .. "/?/init.lua;" .. absolute("spec") .. "/?.lua;;",
        lua_cpath = jit_dir .. "/?.so;;",
        root = absolute("."),
    }
end

local Site = {}
Site.__index = Site

function Site:url(path)
    return "http://127.0.0.1:" .. self.port .. (path or "/")
end

function Site:log()
    return read_file(self.prefix .. "/logs/error.log") or ""
end

-- error.log lines at level error or worse, less those for which
-- expected(line) is true (the failures a spec provokes)
function Site:error_lines(expected)
    local lines = {}
    for line in self:log():gmatch("[^\n]+") do
        if (line:find("%[error%]") or line:find("%[crit%]") or line:find("%[alert%]")
            or line:find("%[emerg%]")) and not (expected and expected(line)) then
            lines[#lines + 1] = line
        end
    end
    return lines
end

-- request(method, path [, { body =, headers = }]) -> status, body, headers (curl CLI)
function Site:request(method, path, opts)
    opts = opts or {}
    local tmp = os.tmpname()
    local cmd = { "curl -s -S --max-time 10 -X", quote(method), "-o", quote(tmp .. ".body"),
        "-D", quote(tmp .. ".head"), "-w '%{http_code}'" }
    for k, v in pairs(opts.headers or {}) do
        cmd[#cmd + 1] = "-H " .. quote(k .. ": " .. v)
    end
    if opts.body then
        write_file(tmp, opts.body)
        cmd[#cmd + 1] = "--data-binary @" .. quote(tmp)
    end
    cmd[#cmd + 1] = quote(self:url(path))
    local code = capture(table.concat(cmd, " ") .. " 2>/dev/null")
    local body = read_file(tmp .. ".body") or ""
    local head = read_file(tmp .. ".head") or ""
    os.remove(tmp)
    os.remove(tmp .. ".body")
    os.remove(tmp .. ".head")
    local headers = {}
    for name, value in head:gmatch("([%w%-]+):%s*([^\r\n]*)") do
        headers[name:lower()] = value
    end
    return tonumber(code), body, headers
end

-- parallel_get(path, n) -> list of { status =, body = } from n concurrent
-- GETs (curl --parallel), and the wall time the batch took.
function Site:parallel_get(path, n)
    local dir = os.tmpname()
    os.remove(dir)
    assert(run("mkdir -p " .. quote(dir)))
    local cfg = {}
    for i = 1, n do
        cfg[#cfg + 1] = 'url = "' .. self:url(path) .. '"'
        cfg[#cfg + 1] = 'output = "' .. dir .. "/" .. i .. '"'
    end
    write_file(dir .. "/curl.cfg", table.concat(cfg, "\n") .. "\n")
    local t0 = capture("date +%s.%N")
    local codes = capture("curl -s --parallel --parallel-immediate --parallel-max " .. n
        .. " --max-time 20 -w '%{http_code}\\n' -K " .. quote(dir .. "/curl.cfg") .. " 2>/dev/null")
    local t1 = capture("date +%s.%N")
    local results = {}
    for code in codes:gmatch("%d+") do
        results[#results + 1] = { status = tonumber(code) }
    end
    for i = 1, n do
        if results[i] then
            results[i].body = read_file(dir .. "/" .. i)
        end
    end
    run("rm -rf " .. quote(dir))
    return results, tonumber(t1) - tonumber(t0)
end

function Site:pid()
    local s = read_file(self.prefix .. "/logs/nginx.pid")
    return s and tonumber(s:match("%d+"))
end

function Site:stop()
    if self.stopped then
        return
    end
    self.stopped = true
    local pid = self:pid()
    if pid then
        -- fast shutdown: specs do not need in-flight requests finished
        run("kill -TERM " .. pid .. " 2>/dev/null")
        -- nginx removes its pid file on exit; the process itself may linger
        -- as a zombie until init reaps it, so kill -0 would wait for that
        local pid_file = self.prefix .. "/logs/nginx.pid"
        for _ = 1, 250 do
            if not read_file(pid_file) or not run("kill -0 " .. pid .. " 2>/dev/null") then
                break
            end
            sleep(0.02)
        end
        if read_file(pid_file) then
            run("kill -KILL " .. pid .. " 2>/dev/null")
        end
    end
    if not os.getenv("WECOM_KEEP_NGINX") then
        run("rm -rf " .. quote(self.prefix))
    end
end

local function render(text, vars)
    return (text:gsub("%${([%w_]+)}", function(name)
        local v = vars[name]
        if v == nil then
            error("nginx conf: no value for ${" .. name .. "}", 0)
        end
        return tostring(v)
    end))
end

-- conf{ workers =, env = { names }, main =, log_level =, dicts = { name = size },
--       trusted =, lua_path =, http = text, servers = { { listen =, ssl = { cert =,
--       key = }, text = } } } -> nginx.conf text for start: wecom.emulator.conf's
-- skeleton with this nginx's module lines, pid, logs and temporary files in
-- the prefix, and Lua paths to this checkout and spec/openresty (lua_path
-- replaces them); a server without listen gets 127.0.0.1:${port}.
function _M.conf(parts)
    for _, server in ipairs(parts.servers or {}) do
        server.listen = server.listen or "127.0.0.1:${port}"
    end
    return conf.nginx {
        modules = _M.modules(),
        user = as_root() and "root" or nil,
        workers = parts.workers,
        env = parts.env,
        main = parts.main,
        pid = "logs/nginx.pid",
        error_log = "logs/error.log",
        log_level = parts.log_level,
        temp = "tmp",
        lua_path = parts.lua_path or "${root}/spec/openresty/?.lua;${lua_path}",
        lua_cpath = "${lua_cpath}",
        dicts = parts.dicts,
        trusted = parts.trusted,
        http = parts.http,
        servers = parts.servers,
    }
end

-- echo_location(path) -> the text of a location that answers each request
-- with what it got, as JSON: { method, args (the query, decoded),
-- content_type, body } (a receiver for the emulator's pushes)
function _M.echo_location(path)
    return ([[
        location %s {
            content_by_lua_block {
                local cjson = require "cjson"
                ngx.req.read_body()
                ngx.header["Content-Type"] = "application/json"
                ngx.print(cjson.encode({ method = ngx.req.get_method(), args = ngx.req.get_uri_args(),
                    content_type = ngx.var.content_type, body = ngx.req.get_body_data() or "" }))
            }
        }
]]):format(path)
end

-- listening yet?  (a TCP connect: an HTTP probe would leave a 404 in error.log)
local function answers(port)
    return run("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" .. port .. "' 2>/dev/null")
end

-- start{ conf = text, files = { [relative path] = text }, env = { NAME = value } } -> site
-- (files and env values may use the same ${...} variables as conf)
function _M.start(opts)
    local paths = _M.paths()
    local last_log
    for _ = 1, 8 do
        local prefix = "/tmp/wecom-nginx-spec-" .. random_int(100000, 999999999)
        assert(run("mkdir -p " .. quote(prefix .. "/logs") .. " " .. quote(prefix .. "/tmp")))
        local port = ports.pick()
        local vars = {
            port = port, port2 = port + 1, prefix = prefix, lua_path = paths.lua_path, lua_cpath = paths.lua_cpath,
            modules = module_lines(), user = as_root() and "user root;" or "",
            root = paths.root,
        }
        write_file(prefix .. "/nginx.conf", render(opts.conf, vars))
        for name, text in pairs(opts.files or {}) do
            local dir = (prefix .. "/" .. name):match("^(.*)/[^/]*$")
            assert(run("mkdir -p " .. quote(dir)))
            write_file(prefix .. "/" .. name, render(text, vars))
        end
        local site = setmetatable({ prefix = prefix, port = port, port2 = port + 1 }, Site)
        -- the environment (credentials) goes through a private file, not
        -- the command line
        local env_lines = {}
        for k, v in pairs(opts.env or {}) do
            env_lines[#env_lines + 1] = k .. "=" .. quote(render(v, vars))
        end
        write_file(prefix .. "/env", table.concat(env_lines, "\n") .. "\n")
        run("chmod 600 " .. quote(prefix .. "/env"))
        local started = run("set -a; . " .. quote(prefix .. "/env") .. "; set +a; exec "
            .. quote(_M.binary()) .. " -p " .. quote(prefix .. "/") .. " -c "
            .. quote(prefix .. "/nginx.conf") .. " -e " .. quote(prefix .. "/logs/error.log")
            .. " >" .. quote(prefix .. "/logs/stdout") .. " 2>&1")
        if started then
            for _ = 1, 100 do
                if answers(port) then
                    -- nginx retries a busy port and may then start anyway,
                    -- with [emerg] lines in error.log: take another port
                    if not site:log():find("in use", 1, true) then
                        return site
                    end
                    break
                end
                sleep(0.05)
            end
        end
        last_log = (read_file(prefix .. "/logs/stdout") or "") .. site:log()
        site:stop()
        if not last_log:find("in use", 1, true) then
            break
        end
    end
    error("nginx failed to start:\n" .. tostring(last_log), 2)
end

-- example{ workers = 2, trusted = path, warmup = true } -> conf text
-- examples/openresty/nginx.conf made to run from a temporary prefix against
-- this checkout: module lines for this nginx, the worker count, the CA that
-- lua_ssl_trusted_certificate names, and Lua paths to lua/ and the build.
function _M.example(opts)
    local text = assert(read_file("examples/openresty/nginx.conf"), "examples/openresty/nginx.conf missing")
    local function sub(pattern, replacement)
        local out, n = text:gsub(pattern, function() return replacement end)
        assert(n > 0, "example conf: no match for " .. pattern)
        text = out
    end
    -- module lines: keep them for Debian's nginx, drop them for OpenResty
    sub("\n%s*#?%s*load_module [^\n]*ndk_http_module%.so;", "\n${modules}")
    sub("\n%s*#?%s*load_module [^\n]*ngx_http_lua_module%.so;", "\n")
    sub("\nworker_processes [^\n]*;", "\n${user}\nworker_processes " .. (opts.workers or 2) .. ";")
    sub("\n%s*listen [^\n]*;", "\n        listen 127.0.0.1:${port};")
    sub("\n%s*lua_ssl_trusted_certificate [^\n]*;", "\n    lua_ssl_trusted_certificate " .. opts.trusted .. ";")
    sub("\n%s*lua_package_path [^\n]*;", "\n    lua_package_path '${root}/examples/openresty/?.lua;${lua_path}';")
    sub("\n%s*lua_package_cpath [^\n]*;", "\n    lua_package_cpath '${lua_cpath}';")
    if opts.warmup == false then
        sub("\n%s*init_worker_by_lua_block %b{}", "\n")
    end
    return text
end

return _M
