-- chain_report.lua: a readable report of an upstream corp's 上下游 setup.
--
--   chains -> groups (nested) -> corps (joined ✓ / pending …)
--   shared corps (企业互联 and 上下游) with their downstream token status
--
-- Against the emulator (what `make demo` runs):
--   eval "$(bin/wecom-emulator start)"
--   lua5.4 examples/chain_report.lua
-- The credentials of the emulator's chain system app are read from its
-- fixture.  For a real corp set WECOM_CORPID, WECOM_SECRET and WECOM_AGENTID
-- (and leave WECOM_BASE_URL unset).

-- --help before anything is loaded: it works without the module paths set
if arg and (arg[1] == "-h" or arg[1] == "--help") then
    io.write([=[
chain_report: chains, their groups and corps, and the shared corps with their downstream token status

from a checkout (after make build):
  LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' \
    lua5.4 examples/chain_report.lua
with the rock installed (luarocks make): lua5.4 examples/chain_report.lua   (or luajit)
against the emulator: eval "$(bin/wecom-emulator start)"; export WECOM_BASE_URL WECOM_CA_FILE
against a real corp: set WECOM_CORPID, WECOM_SECRET and WECOM_AGENTID
]=])
    os.exit(0)
end

local wecom = require "wecom"
-- common.lua sits next to this script
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local die = common.die_as("chain_report")

local out = io.stdout
local function line(indent, ...)
    out:write(string.rep("  ", indent), ...)
    out:write("\n")
end

-- Pads to a column width on a terminal.  Rough but dependency-free (LuaJIT
-- has no utf8 library): 3- and 4-byte UTF-8 sequences (CJK) take two columns.
local function pad(s, width)
    local cols = 0
    for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
        cols = cols + (#ch >= 3 and 2 or 1)
    end
    return s .. string.rep(" ", width - cols)
end

local function corp_line(indent, corp)
    if corp.is_joined then
        line(indent, "✓ ", corp.corp_name or "?", "  ", corp.corpid,
            (corp.custom_id and corp.custom_id ~= "") and ("  #" .. corp.custom_id) or "")
    else
        line(indent, "… ", corp.corp_name or "?", "  (pending ", corp.pending_corpid or "?", ")")
    end
end

local function report_chain(app, chain)
    line(0, "▸ ", chain.chain_name, "  [", chain.chain_id, "]")
    local groups = assert(app.chain:groups(chain.chain_id))

    -- one recursive walk for the corps, bucketed by group
    local by_group, total, joined = {}, 0, 0
    for corp in app.chain:corps{ chain_id = chain.chain_id, need_pending = true, recursive = true, limit = 100 } do
        local g = corp.groupid or 1
        by_group[g] = by_group[g] or {}
        table.insert(by_group[g], corp)
        total = total + 1
        if corp.is_joined then joined = joined + 1 end
    end

    local children = {}
    for _, g in ipairs(groups) do
        if g.groupid ~= g.parentid then
            children[g.parentid] = children[g.parentid] or {}
            table.insert(children[g.parentid], g)
        end
    end
    for _, list in pairs(children) do
        table.sort(list, function(a, b)
            if (a.order or 0) ~= (b.order or 0) then return (a.order or 0) > (b.order or 0) end
            return a.groupid < b.groupid
        end)
    end

    local function print_group(id, indent)
        for _, corp in ipairs(by_group[id] or {}) do
            corp_line(indent, corp)
        end
        for _, g in ipairs(children[id] or {}) do
            line(indent, "▾ ", g.group_name, "  (group ", g.groupid, ")")
            print_group(g.groupid, indent + 1)
        end
    end
    print_group(1, 1)
    line(1, string.format("%d corps: %d joined, %d pending", total, joined, total - joined))
end

local function report_shares(app, business_type, label)
    line(0, "Shared corps, ", label, " (business_type ", business_type, "):")
    local n = 0
    for corp in app:shared_corps{ business_type = business_type } do
        n = n + 1
        local down = app:downstream{ corpid = corp.corpid, agentid = corp.agentid, business_type = business_type }
        local token, err = down:token()
        local status = token and "token ok" or ("token error: " .. tostring(err.kind)
            .. (err.errcode and (" " .. err.errcode) or ""))
        line(1, pad(corp.corp_name or "?", 34), pad(corp.corpid, 18), "agent ", pad(tostring(corp.agentid), 9),
            status)
    end
    if n == 0 then
        line(1, "(none)")
    end
end

-- the app from the environment, else the emulator's chain system app (common.lua)
local app = wecom.new(common.app_options(true, die))

local chains, err = app.chain:list()
if not chains then
    die("get_chain_list failed: ", tostring(err))
end
line(0, "Upstream corp ", app.corpid or "", ": ", #chains, " chain(s)")
out:write("\n")

-- an error object raised by an iterator is reported, not a stack trace
local ok, failure = pcall(function()
    for _, chain in ipairs(chains) do
        report_chain(app, chain)
        out:write("\n")
    end
    report_shares(app, 1, "上下游")
    out:write("\n")
    report_shares(app, 0, "企业互联")
end)
if not ok then
    die(tostring(failure))
end
