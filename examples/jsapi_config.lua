-- jsapi_config.lua: the wx.config and wx.agentConfig parameters for a page
-- opened inside a downstream corp (上下游 shared app), as JSON.
--
--   eval "$(bin/wecom-emulator start)"
--   lua5.4 examples/jsapi_config.lua https://app.example.com/page?x=1 [downstream-corpid]
-- A server would return this JSON to the page, which passes it to
-- wx.config / wx.agentConfig.  Both tickets belong to the DOWNSTREAM corp.

-- --help before anything is loaded: it works without the module paths set
if arg and (arg[1] == "-h" or arg[1] == "--help") then
    io.write([=[
jsapi_config: wx.config and wx.agentConfig parameters for URL, as JSON
(default URL: https://app.example.com/page?from=wecom)

from a checkout (after make build):
  LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' \
    lua5.4 examples/jsapi_config.lua [URL [DOWNSTREAM_CORPID]]
with the rock installed (luarocks make): lua5.4 examples/jsapi_config.lua [URL [DOWNSTREAM_CORPID]]   (or luajit)
against the emulator: eval "$(bin/wecom-emulator start)"; export WECOM_BASE_URL WECOM_CA_FILE
against a real corp: set WECOM_CORPID, WECOM_SECRET and WECOM_AGENTID
]=])
    os.exit(0)
end

local wecom = require "wecom"
local cjson = require "cjson.safe"
-- common.lua sits next to this script
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local die = common.die_as("jsapi_config")

local DEFAULT_URL = "https://app.example.com/page?from=wecom"
local url = arg[1]
if not url then
    url = DEFAULT_URL
    io.stderr:write("jsapi_config: no URL given, signing ", url, " (usage: --help)\n")
end
local wanted = arg[2]

-- the app from the environment, else the emulator's chain system app (common.lua)
local app = wecom.new(common.app_options(true, die))

-- the share tells which agentid the app has inside the downstream corp
local share = app:shared_corps{ business_type = 1, corpid = wanted, limit = 1 }()
if not share then
    die(wanted and ("the app is not shared to " .. wanted) or "the app is not shared to any corp")
end

local down = app:downstream{ corpid = share.corpid, agentid = share.agentid, business_type = 1 }
local config, err = down:jsapi_config(url)
if not config then
    die("wx.config: ", tostring(err))
end
local agent_config, aerr = down:agent_config(url)
if not agent_config then
    die("wx.agentConfig: ", tostring(aerr))
end

print(cjson.encode({ corp = share.corp_name, url = url, config = config, agentConfig = agent_config }))
