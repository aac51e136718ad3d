-- jsapi_config.lua: the wx.config and wx.agentConfig parameters for a page
-- opened inside a downstream corp (上下游 shared app), as JSON.
--
--   eval "$(bin/wecom-emulator start)"
--   lua5.4 examples/jsapi_config.lua https://app.example.com/page?x=1 [downstream-corpid]
-- A server would return this JSON to the page, which passes it to
-- wx.config / wx.agentConfig.  Both tickets belong to the DOWNSTREAM corp.

local wecom = require "wecom"
local core = require "wecom.core"
local cjson = require "cjson.safe"

local function die(...)
    io.stderr:write("jsapi_config: ", ...)
    io.stderr:write("\n")
    os.exit(1)
end

local function app_options()
    local base_url, ca_file = os.getenv("WECOM_BASE_URL"), os.getenv("WECOM_CA_FILE")
    local corpid, secret = os.getenv("WECOM_CORPID"), os.getenv("WECOM_SECRET")
    if corpid and secret then
        return { corpid = corpid, secret = secret, agentid = tonumber(os.getenv("WECOM_AGENTID")),
                 base_url = base_url, ca_file = ca_file }
    end
    if not base_url then
        die("set WECOM_BASE_URL (emulator) or WECOM_CORPID/WECOM_SECRET/WECOM_AGENTID")
    end
    local http = core.http_session{ ca_file = ca_file }
    local res = http:request{ method = "GET", url = base_url .. "/__emulator/fixture" }
    http:close()
    local fixture = res and res.status == 200 and cjson.decode(res.body)
    for _, a in ipairs(type(fixture) == "table" and fixture.upstream and fixture.upstream.apps or {}) do
        if a.system then
            return { corpid = fixture.upstream.corpid, secret = a.secret, agentid = a.agentid,
                     base_url = base_url, ca_file = ca_file }
        end
    end
    die("cannot find the chain system app in the emulator fixture")
end

local url = arg[1] or "https://app.example.com/page?from=wecom"
local wanted = arg[2]

local app = wecom.new(app_options())

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
