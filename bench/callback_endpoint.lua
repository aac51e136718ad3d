-- Callback endpoint benchmark (DESIGN.md): requests per second that one
-- nginx worker serves on keep-alive connections (wrk) for
--   /cb    wecom.ngx.callback_handler: verify, decrypt, parse, route, 200
--   /noop  a no-op content_by_lua handler that reads the body (the bar: >= 0.8x)
--   node   a Node.js http server doing @wecom/crypto verify + decrypt on the
--          same requests (the bar: /cb >= 3x)
-- All three get the same signed messages (callback_bench.lua gen) in turn;
-- each contestant runs PASSES times, interleaved, and its best pass counts.
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/lua5.4/?.so;;' \
--     lua5.4 bench/callback_endpoint.lua MESSAGES_FILE
-- Environment: PASSES (5), DURATION seconds per run (3), CONNECTIONS (16),
-- PIN=1: the servers on CPU 0 and wrk on the others (default: the scheduler
-- places them; node may then run its helper threads on a second core).
-- Exits 1 when a bar is missed, 2 when wrk or node is missing.

local nginx = require "helpers.nginx"
local ports = require "helpers.ports"
local sh = require "helpers.sh"

local quote, run, capture = sh.quote, sh.run, sh.capture

local messages = assert(arg[1], "usage: callback_endpoint.lua MESSAGES_FILE")
local PASSES = tonumber(os.getenv("PASSES") or "") or 5
local DURATION = tonumber(os.getenv("DURATION") or "") or 3
local CONNECTIONS = tonumber(os.getenv("CONNECTIONS") or "") or 16

for _, tool in ipairs { "wrk", "node" } do
    if not run("command -v " .. tool .. " >/dev/null 2>&1") then
        io.write("callback endpoint: SKIPPED, " .. tool .. " is not installed"
            .. (tool == "wrk" and " (apt-get install wrk)" or "") .. "\n")
        os.exit(2)
    end
end

local f = assert(io.open(messages, "rb"))
local token, aes_key, receive_id = f:read("*l"):match("^(%S+) (%S+) (%S+)$")
f:close()

local CONF = nginx.conf {
    env = { "BENCH_CB_TOKEN", "BENCH_CB_AES_KEY", "BENCH_CB_RECEIVE_ID" },
    lua_path = "${root}/bench/?.lua;${lua_path}",
    http = [[
    keepalive_requests 1000000;
    init_by_lua_block { require("callback_endpoint_site").init() }
]],
    servers = { { text = [[
        location = /cb {
            content_by_lua_block { require("callback_endpoint_site").callback() }
        }
        location = /noop {
            content_by_lua_block { require("callback_endpoint_site").noop() }
        }
]] } },
}

local site = nginx.start {
    conf = CONF,
    env = { BENCH_CB_TOKEN = token, BENCH_CB_AES_KEY = aes_key, BENCH_CB_RECEIVE_ID = receive_id },
}

-- PIN=1 (2+ CPUs): each server gets CPU 0 and wrk the others, so the
-- servers compare on one core each, node's helper threads included.
local PIN = os.getenv("PIN") == "1" and run("command -v taskset >/dev/null 2>&1")
    and tonumber(capture("nproc")) >= 2
local SERVER_CPU, CLIENT_CPUS = "0", "1-" .. (tonumber(capture("nproc")) - 1)
if PIN then
    for pid in capture("pgrep -P " .. site:pid()):gmatch("%d+") do
        run("taskset -a -p -c " .. SERVER_CPU .. " " .. pid .. " >/dev/null")
    end
    run("taskset -a -p -c " .. SERVER_CPU .. " " .. site:pid() .. " >/dev/null")
end
local pin_server = PIN and ("taskset -c " .. SERVER_CPU .. " ") or ""
local pin_client = PIN and ("taskset -c " .. CLIENT_CPUS .. " ") or ""

-- the node server, in the background
local node_port, node_pid
for _ = 1, 8 do
    node_port = ports.pick()
    local log = site.prefix .. "/node.log"
    node_pid = tonumber(capture(pin_server .. "node bench/callback_endpoint_node.js " .. quote(messages)
        .. " " .. node_port .. " >" .. quote(log) .. " 2>&1 & echo $!"):match("%d+"))
    for _ = 1, 100 do
        if (sh.read_file(log) or ""):find("listening", 1, true) then
            break
        end
        run("sleep 0.05")
    end
    if (sh.read_file(log) or ""):find("listening", 1, true) then
        break
    end
    run("kill " .. node_pid .. " 2>/dev/null")
    node_pid = nil
end
if not node_pid then
    site:stop()
    error("callback endpoint: the node server did not start")
end

-- CPU seconds (user + system, every thread) a process has used so far,
-- from /proc (nil where there is no /proc).
local TICKS = tonumber(capture("getconf CLK_TCK 2>/dev/null"):match("%d+") or "") or 100
local function cpu_seconds(pid)
    local stat = sh.read_file("/proc/" .. pid .. "/stat")
    if not stat then
        return nil
    end
    -- fields after the command name (which may hold spaces): state is 3rd,
    -- utime 14th, stime 15th
    local rest = stat:match("%) (.*)$")
    local fields = {}
    for field in rest:gmatch("%S+") do
        fields[#fields + 1] = field
    end
    return (tonumber(fields[12]) + tonumber(fields[13])) / TICKS
end

local worker_pid = tonumber(capture("pgrep -P " .. site:pid()):match("%d+"))

local function stop_all()
    run("kill " .. node_pid .. " 2>/dev/null")
    site:stop()
end

local function wrk_output(url, seconds)
    return capture(pin_client .. "wrk -t 1 -c " .. CONNECTIONS .. " -d " .. seconds .. "s"
        .. " -s bench/callback_endpoint_wrk.lua " .. quote(url) .. " -- " .. quote(messages) .. " 2>&1")
end

-- wrk(url, pid) -> requests per second, and requests per CPU second of
-- the server process pid (nil without /proc); raises when a reply was not
-- a 200
local function wrk(url, pid)
    local cpu0 = cpu_seconds(pid)
    local out = wrk_output(url, DURATION)
    local cpu1 = cpu_seconds(pid)
    local rate, bad, socket_errors, count = out:match("RESULT (%S+) (%d+) (%d+) (%d+)")
    if not rate or tonumber(bad) > 0 or tonumber(socket_errors) > 0 then
        stop_all()
        error("callback endpoint: wrk against " .. url .. " failed:\n" .. out)
    end
    local per_cpu = cpu0 and cpu1 and cpu1 > cpu0 and tonumber(count) / (cpu1 - cpu0) or nil
    return tonumber(rate), per_cpu
end

local contestants = {
    { name = "cb", url = site:url("/cb"), pid = worker_pid },
    { name = "noop", url = site:url("/noop"), pid = worker_pid },
    { name = "node", url = "http://127.0.0.1:" .. node_port .. "/cb", pid = node_pid },
}
local best, pass_ratios = {}, { noop = {}, node = {} }
local rates_of = { cb = {}, noop = {}, node = {} }
local per_cpu = { cb = {}, noop = {}, node = {} }
-- a short warm-up of each (LuaJIT's traces, V8's JIT)
for _, c in ipairs(contestants) do
    wrk_output(c.url, 1)
end
for _ = 1, PASSES do
    local rates = {}
    for _, c in ipairs(contestants) do
        local rate, rate_cpu = wrk(c.url, c.pid)
        rates[c.name] = rate
        table.insert(rates_of[c.name], rate)
        table.insert(per_cpu[c.name], rate_cpu)
        if not best[c.name] or rate > best[c.name] then
            best[c.name] = rate
        end
    end
    table.insert(pass_ratios.noop, rates.cb / rates.noop)
    table.insert(pass_ratios.node, rates.cb / rates.node)
end
local function median(list)
    table.sort(list)
    local n = #list
    return n % 2 == 1 and list[(n + 1) / 2] or (list[n / 2] + list[n / 2 + 1]) / 2
end
local errors_logged = #site:error_lines()
stop_all()

local to_noop, to_node = best.cb / best.noop, best.cb / best.node
io.write(("callback endpoint, 1 nginx worker, wrk %d connections keep-alive, %d s x %d passes"
    .. " (requests/s, best pass)%s\n"):format(CONNECTIONS, DURATION, PASSES,
    PIN and "; servers on CPU " .. SERVER_CPU .. ", wrk on " .. CLIENT_CPUS or ""))
io.write(("  %-52s %9.0f\n"):format("wecom.ngx.callback_handler (verify, decrypt, route)", best.cb))
io.write(("  %-52s %9.0f\n"):format("no-op content_by_lua reading the body", best.noop))
io.write(("  %-52s %9.0f\n"):format("node http + @wecom/crypto verify + decrypt", best.node))
io.write(("ratios of the best passes (bars: / no-op >= 0.8, / node >= 3.0)\n  handler / no-op %.2f   / node %.2f\n")
    :format(to_noop, to_node))
io.write(("  (median of the per-pass ratios: / no-op %.2f   / node %.2f)\n")
    :format(median(pass_ratios.noop), median(pass_ratios.node)))
-- How far each contestant's passes lie apart: on a VM whose speed drifts,
-- a spread much wider than the margins the bars leave means this run
-- settles neither bar.
local widest = 0
local LABELS = { cb = "wecom.ngx.callback_handler", noop = "no-op content_by_lua", node = "node" }
io.write("spread of the passes (slowest / fastest pass)\n")
for _, c in ipairs(contestants) do
    local slowest = math.min(table.unpack(rates_of[c.name]))
    io.write(("  %-52s %9.2f\n"):format(LABELS[c.name], slowest / best[c.name]))
    widest = math.max(widest, 1 - slowest / best[c.name])
end
if widest > 0.2 then
    io.write("NOTE: the machine's speed moved by more than 20% during this run\n")
end
-- What the wall clock cannot show on a shared machine: the CPU time each
-- server used for its requests (user + system, all its threads), which the
-- other load on the machine barely moves.
if #per_cpu.cb == PASSES and #per_cpu.noop == PASSES and #per_cpu.node == PASSES then
    local cpu_cb, cpu_noop, cpu_node = median(per_cpu.cb), median(per_cpu.noop), median(per_cpu.node)
    io.write("requests per CPU second of the server (median of the passes)\n")
    io.write(("  %-52s %9.0f\n"):format("wecom.ngx.callback_handler", cpu_cb))
    io.write(("  %-52s %9.0f\n"):format("no-op content_by_lua", cpu_noop))
    io.write(("  %-52s %9.0f\n"):format("node (every thread)", cpu_node))
    io.write(("  handler / no-op %.2f   / node %.2f\n"):format(cpu_cb / cpu_noop, cpu_cb / cpu_node))
end
local status = 0
if to_noop < 0.8 then
    io.write("MISSED: callback endpoint < 0.8x the no-op handler\n")
    status = 1
end
if to_node < 3.0 then
    io.write("MISSED: callback endpoint < 3x node\n")
    status = 1
end
if errors_logged > 0 then
    io.write("MISSED: nginx logged " .. errors_logged .. " error lines\n")
    status = 1
end
os.exit(status)
