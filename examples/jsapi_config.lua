-- jsapi_config.lua: the wx.config and wx.agentConfig parameters for a page
-- opened inside a downstream corp (上下游 shared app), as JSON.
--
--   eval "$(bin/wecom-emulator start)"
--   lua5.4 examples/jsapi_config.lua https://app.example.com/page?x=1 [downstream-corpid]
-- A server would return this JSON to the page, which passes it to
-- wx.config / wx.agentConfig.  Both tickets belong to the DOWNSTREAM corp.

local wecom = require "wecom"
local cjson = require "cjson.safe"
-- common.lua sits next to this script
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local die = common.die_as("jsapi_config")

local url = arg[1] or "https://app.example.com/page?from=wecom"
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
