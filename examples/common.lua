-- common.lua: what the example scripts share — failing with a message, and
-- the options of the app to run as.
--
-- The app comes from the environment when WECOM_CORPID and WECOM_SECRET are
-- set (a real corp: WECOM_AGENTID too, and WECOM_BASE_URL left unset).
-- Otherwise WECOM_BASE_URL names a running emulator, and an app of the
-- upstream corp in its fixture is used:
--   eval "$(bin/wecom-emulator start)"    -- sets WECOM_BASE_URL, WECOM_CA_FILE
--
-- An example loads this file from its own directory:
--   package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
--   local common = require "common"

local core = require "wecom.core"
local cjson = require "cjson.safe"

local _M = {}

-- A function that prints "<script>: <message>" on stderr and exits with 1.
function _M.die_as(script)
    return function(...)
        io.stderr:write(script, ": ", ...)
        io.stderr:write("\n")
        os.exit(1)
    end
end

-- Options for wecom.new().  `system` picks the emulator's chain system app
-- (true: it sees every chain) or an ordinary app (false); `die` reports a
-- failure (see die_as).
function _M.app_options(system, die)
    local base_url, ca_file = os.getenv("WECOM_BASE_URL"), os.getenv("WECOM_CA_FILE")
    local corpid, secret = os.getenv("WECOM_CORPID"), os.getenv("WECOM_SECRET")
    if corpid and secret then
        return { corpid = corpid, secret = secret, agentid = tonumber(os.getenv("WECOM_AGENTID")),
                 base_url = base_url, ca_file = ca_file }
    end
    if not base_url then
        die("set WECOM_BASE_URL (emulator) or WECOM_CORPID/WECOM_SECRET/WECOM_AGENTID (real corp)")
    end
    local http = core.http_session{ ca_file = ca_file, timeout = 5 }
    local res, err = http:request{ method = "GET", url = base_url .. "/__emulator/fixture" }
    http:close()
    if not res or res.status ~= 200 then
        die("cannot read the emulator fixture: ", res and ("HTTP " .. res.status) or tostring(err))
    end
    local fixture = cjson.decode(res.body)
    if type(fixture) ~= "table" or type(fixture.upstream) ~= "table" then
        die("the emulator fixture has no upstream corp")
    end
    for _, a in ipairs(fixture.upstream.apps or {}) do
        if (not a.system) == (not system) then
            return { corpid = fixture.upstream.corpid, secret = a.secret, agentid = a.agentid,
                     base_url = base_url, ca_file = ca_file }
        end
    end
    die(system and "the emulator fixture has no chain system app"
        or "the emulator fixture has no ordinary app")
end

return _M
