-- provider_install.lua: a service provider's day, against the emulator.
--
--   WeCom pushes a suite_ticket  ->  suite token
--   the provider's site sends an admin to the install page (a test install)
--   the admin confirms           ->  auth code  ->  permanent code (kept in the store)
--   the authorized corp's client calls its APIs
--   another corp installs from the app market (create_auth), each_corp walks both
--   a 代开发 app: its QR link, its install, its secret reset
--   an uninstall (cancel_auth)
--
--   eval "$(bin/wecom-emulator start)"      -- sets WECOM_BASE_URL, WECOM_CA_FILE
--   lua5.4 examples/provider_install.lua
--
-- The emulator plays WeCom, the admins and the console (its /__emulator/*
-- control endpoints); everything else is what a provider's own server does.

local wecom = require "wecom"
local core = require "wecom.core"
local cjson = require "cjson.safe"
local url = require "wecom.url"

local base_url, ca_file = os.getenv("WECOM_BASE_URL"), os.getenv("WECOM_CA_FILE")
local function die(...)
    io.stderr:write("provider_install: ", ...)
    io.stderr:write("\n")
    os.exit(1)
end
if not base_url then
    die("start the emulator first: eval \"$(bin/wecom-emulator start)\"")
end

local function say(fmt, ...)
    io.write(string.format(fmt, ...), "\n")
end

-- The emulator's side: what WeCom, an admin or the console would do.
local http = core.http_session { ca_file = ca_file, timeout = 10 }
local function emulator(method, path, body)
    local res, err = http:request { method = method, url = base_url .. path,
        headers = body and { ["Content-Type"] = "application/json" } or nil,
        body = body and cjson.encode(body) or nil }
    if not res then
        die(path, ": ", tostring(err.message))
    end
    return res, cjson.decode(res.body)
end

local _, fixture = emulator("GET", "/__emulator/fixture")
if type(fixture) ~= "table" or type(fixture.provider) ~= "table" then
    die("the emulator fixture has no provider section")
end
local third, template
for _, s in ipairs(fixture.provider.suites) do
    if s.customized then template = s else third = s end
end

-- Where the suites keep their tickets, tokens and permanent codes: a file
-- store survives restarts (the memory store would not: then persist
-- auth.permanent_code yourself and hand it back with suite:set_permanent_code).
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -m 700 '" .. dir .. "'"))
local store = wecom.store.file(dir)

local function new_suite(def)
    return wecom.suite {
        suite_id = def.suite_id, suite_secret = def.suite_secret,
        token = def.callback.token, aes_key = def.callback.aes_key,    -- 指令回调/数据回调 settings
        provider_corpid = fixture.provider.corpid,
        base_url = base_url, ca_file = ca_file,
        web_base_url = base_url,     -- the emulator serves the install page too
        store = store,
    }
end

-- What arrives at the 指令回调 URL: the emulator answers with exactly the
-- query and body WeCom would POST; a server hands them to suite:receive.
local function push(suite, control, body)
    body.suite_id = suite.suite_id
    local _, posted = emulator("POST", "/__emulator/" .. control, body)
    local event, reply = suite:receive(posted.query, posted.body)
    if not event then
        die(control, ": ", tostring(reply))
    end
    return event, reply
end

---------------------------------------------------------------------------
say("== %s: the suite_ticket", tostring(new_suite(third)))
local suite = new_suite(third)
local event, reply = push(suite, "suite_ticket", {})
say("%s pushed, answered %q; suite token until %s", event.type, reply,
    os.date("%H:%M:%S", math.floor(select(2, assert(suite:token())))))

---------------------------------------------------------------------------
say("== an install from the provider's site (a test install)")
local redirect = "https://" .. third.install_domain .. "/wecom/installed"
local link = assert(suite:install_url { redirect_uri = redirect, state = "signup42", test = true })
say("install page: %s...", link:sub(1, 90))
-- the admin of wwRETAILCORP01 confirms; WeCom redirects to redirect_uri
local query = url.parse_query(link)
query.confirm, query.corpid = "1", "wwRETAILCORP01"
local res = emulator("GET", "/3rdapp/install?" .. url.encode_query(query))
local back = url.parse_query(res.headers.location)
say("redirected back with auth_code (valid %s s), state %s", back.expires_in, back.state)
local auth, err = suite:authorize(back.auth_code)
if not auth then
    die("authorize: ", tostring(err))
end
say("%s: %s, installed by %s", tostring(auth), auth.corp_name, auth.auth_user_info.userid)
say("auth.permanent_code is handed out once (%d bytes): the store keeps it", #auth.permanent_code)

local corp = assert(suite:corp("wwRETAILCORP01"))
local app = assert(corp:get("/cgi-bin/agent/get", { agentid = corp.agentid }))
say("%s: app %q, visible to %d user(s)", tostring(corp), app.name,
    #((app.allow_userinfos or {}).user or {}))

---------------------------------------------------------------------------
say("== an install from the app market: create_auth")
event = push(suite, "authorize", { corpid = "wwRETAILCORP02", action = "create" })
say("%s -> %s", event.type, tostring(event.auth))
for c in suite:corps() do
    say("  authorized: %s %s (agentid %d)", c.corpid, c.corp_name or "?", c.agentid or -1)
end
local results = suite:each_corp(function(client, c)
    local user = assert(client:get("/cgi-bin/agent/get", { agentid = c.agentid }))
    return user.name
end, { concurrency = 4 })
say("each_corp: %d corps answered", #results)

---------------------------------------------------------------------------
say("== 代开发: %s", template.suite_id)
local provider = wecom.provider { corpid = fixture.provider.corpid,
    provider_secret = fixture.provider.provider_secret, base_url = base_url, ca_file = ca_file, store = store }
local qr = assert(provider:customized_auth_url { templateid_list = { template.suite_id }, state = "dk1" })
say("QR code link for customers: %s...", qr:sub(1, 60))
local dk = new_suite(template)
push(dk, "suite_ticket", {})
push(dk, "authorize", { corpid = "wwRETAILCORP02", action = "create", state = "dk1" })
local dk_corp = assert(dk:corp("wwRETAILCORP02"))
assert(dk_corp:get("/cgi-bin/agent/get", { agentid = dk_corp.agentid }))
say("%s: its token from gettoken with the permanent code as secret", tostring(dk_corp))
event = push(dk, "authorize", { corpid = "wwRETAILCORP02", action = "reset" })
assert(dk_corp:get("/cgi-bin/agent/get", { agentid = dk_corp.agentid }))
say("%s: a new secret, and the same client goes on with it", event.type)
say("open corpid of wwRETAILCORP02: %s", assert(provider:corpid_to_opencorpid("wwRETAILCORP02")))

---------------------------------------------------------------------------
say("== an uninstall: cancel_auth")
push(suite, "authorize", { corpid = "wwRETAILCORP02", action = "cancel" })
local gone, gerr = suite:corp("wwRETAILCORP02")
say("suite:corp(\"wwRETAILCORP02\") -> %s, %s", tostring(gone), tostring(gerr))

os.execute("rm -rf '" .. dir .. "'")
