-- export_chain_corps_csv.lua: every corp of every chain (joined and pending)
-- as CSV on stdout, one row per corp and chain, with the full group path.
--
--   eval "$(bin/wecom-emulator start)"
--   lua5.4 examples/export_chain_corps_csv.lua > corps.csv
-- For a real corp set WECOM_CORPID, WECOM_SECRET, WECOM_AGENTID (the chain
-- system app, which sees every chain).

-- --help before anything is loaded: it works without the module paths set
if arg and (arg[1] == "-h" or arg[1] == "--help") then
    io.write([=[
export_chain_corps_csv: every corp of every chain as CSV on stdout

from a checkout (after make build):
  LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' \
    lua5.4 examples/export_chain_corps_csv.lua > corps.csv
with the rock installed (luarocks make): lua5.4 examples/export_chain_corps_csv.lua > corps.csv   (or luajit)
against the emulator: eval "$(bin/wecom-emulator start)"; export WECOM_BASE_URL WECOM_CA_FILE
against a real corp: set WECOM_CORPID, WECOM_SECRET and WECOM_AGENTID
]=])
    os.exit(0)
end

local wecom = require "wecom"
-- common.lua sits next to this script
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local die = common.die_as("export_chain_corps_csv")

-- RFC 4180: quote a field holding a comma, quote, CR or LF (or edge spaces);
-- quotes inside are doubled.
local function csv_field(v)
    if v == nil then
        return ""
    end
    local s = tostring(v)
    if s:find('[,"\r\n]') or s:find("^%s") or s:find("%s$") then
        return '"' .. s:gsub('"', '""') .. '"'
    end
    return s
end

local function csv_row(fields, n)
    local cells = {}
    for i = 1, n do
        cells[i] = csv_field(fields[i])
    end
    io.stdout:write(table.concat(cells, ","), "\r\n")
end

local COLUMNS = { "chain_id", "chain_name", "group_path", "groupid", "joined", "corpid",
                  "pending_corpid", "corp_name", "custom_id" }

-- the app from the environment, else the emulator's chain system app (common.lua)
local app = wecom.new(common.app_options(true, die))
local chains = assert(app.chain:list())

csv_row(COLUMNS, #COLUMNS)
local ok, err = pcall(function()
    for _, chain in ipairs(chains) do
        -- "华北区/北京市" style paths, like import_chain_contact's group_path
        local groups = assert(app.chain:groups(chain.chain_id))
        local by_id = {}
        for _, g in ipairs(groups) do by_id[g.groupid] = g end
        local function path_of(id)
            local names, seen = {}, {}
            while id and id ~= 1 and by_id[id] and not seen[id] do
                seen[id] = true
                table.insert(names, 1, by_id[id].group_name)
                id = by_id[id].parentid
            end
            return table.concat(names, "/")
        end

        for corp in app.chain:corps{ chain_id = chain.chain_id, need_pending = true, recursive = true } do
            csv_row({ chain.chain_id, chain.chain_name, path_of(corp.groupid), corp.groupid,
                      corp.is_joined and 1 or 0, corp.corpid, corp.pending_corpid, corp.corp_name,
                      corp.custom_id }, #COLUMNS)
        end
    end
end)
if not ok then
    die(tostring(err))
end
