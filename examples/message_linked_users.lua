-- message_linked_users.lua: send a text message to every linked-corp (企业互联)
-- member the app can see, then report who could not be reached.
--
--   eval "$(bin/wecom-emulator start)"
--   lua5.4 examples/message_linked_users.lua "Maintenance tonight at 22:00"
-- Without WECOM_CORPID/WECOM_SECRET/WECOM_AGENTID the emulator's ordinary
-- (non-system) app is used.  Add --dry-run to list the recipients only.

-- --help before anything is loaded: it works without the module paths set
if arg and (arg[1] == "-h" or arg[1] == "--help") then
    io.write([=[
message_linked_users: send TEXT to every linked-corp member the app can see (--dry-run: list them only)

from a checkout (after make build):
  LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/lua5.4/?.so;;' \
    lua5.4 examples/message_linked_users.lua "TEXT" [--dry-run]
with the rock installed (luarocks make): lua5.4 examples/message_linked_users.lua "TEXT" [--dry-run]   (or luajit)
against the emulator: eval "$(bin/wecom-emulator start)"; export WECOM_BASE_URL WECOM_CA_FILE
against a real corp: set WECOM_CORPID, WECOM_SECRET and WECOM_AGENTID
]=])
    os.exit(0)
end

local wecom = require "wecom"
local unpack = table.unpack or unpack -- luacheck: ignore 143
-- common.lua sits next to this script
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local common = require "common"

local die = common.die_as("message_linked_users")

local text, dry_run = nil, false
for _, a in ipairs(arg) do
    if a == "--dry-run" then dry_run = true else text = a end
end
text = text or "Hello from the wecom Lua SDK"

-- the app from the environment, else the emulator's ordinary app (common.lua)
local app = wecom.new(common.app_options(false, die))

-- the members granted to this app directly, plus those of the granted departments
local perms = assert(app.linkedcorp:perm_list())
local recipients, seen = {}, {}
local function add(id)
    if not seen[id] then
        seen[id] = true
        recipients[#recipients + 1] = id
    end
end
for _, id in ipairs(perms.userids) do add(id) end
for _, dept in ipairs(perms.department_ids) do
    local users, err = app.linkedcorp:users{ department_id = dept, fetch_child = true }
    if not users then
        die("listing ", dept, ": ", tostring(err))
    end
    for _, u in ipairs(users) do
        -- simplelist gives the bare userid and the owning corp
        add((u.corpid and u.corpid ~= "") and (u.corpid .. "/" .. u.userid) or u.userid)
    end
end

print(string.format("%d linked member(s):", #recipients))
for _, id in ipairs(recipients) do print("  " .. id) end
if dry_run or #recipients == 0 then
    return
end

-- linkedcorp/message/send takes at most 1000 users per call
local failed = 0
for first = 1, #recipients, 1000 do
    local batch = { unpack(recipients, first, math.min(first + 999, #recipients)) }
    local result, err = app.linkedcorp:send{ touser = batch, msgtype = "text", text = { content = text } }
    if not result then
        die("send failed: ", tostring(err))
    end
    for _, id in ipairs(result.invaliduser) do
        failed = failed + 1
        print("  not delivered: " .. id)
    end
end
print(string.format("sent to %d, %d not delivered", #recipients - failed, failed))
