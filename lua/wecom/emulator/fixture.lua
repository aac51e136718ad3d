-- The fixture: the emulator's read-only world (corps, apps, shares, chains,
-- linked corps, customers), loaded once in init_by_lua and indexed for the
-- handlers. Mutable parts (chain membership, rules, jobs) start from here and
-- live in the shared dict afterwards (see store.lua).

local json = require "wecom.json"

local type = type
local ipairs = ipairs
local error = error
local tostring = tostring
local format = string.format

local _M = {}

local loaded      -- indexed fixture
local loaded_text -- the JSON as loaded, served by GET /__emulator/fixture

local function fail(msg)
    error("wecom emulator fixture: " .. msg, 0)
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        fail("cannot open " .. tostring(err))
    end
    local s = f:read("*a")
    f:close()
    return s
end

-- N downstream corps shared with the system app (business_type 1), each with
-- an agent and a user, all joined to one chain.
function _M.generate(n)
    local corps, members, corpids = json.array(), json.array(), {}
    for i = 1, n do
        local corpid = format("wwGEN%06d", i)
        corpids[i] = corpid
        corps[i] = {
            corpid = corpid,
            corp_name = format("Generated Corp %d", i),
            qualification_status = 2,
            agents = json.array {
                { agentid = 1000100 + i % 900, name = "Chain Portal", shared_from = 1000002,
                  business_type = 1, confirmed = true },
            },
            users = json.array {
                { userid = format("user%d", i), name = format("User %d", i),
                  department = json.array { 1 }, position = "Manager",
                  mobile = format("138%08d", i), email = format("user%d@gen%d.example.com", i, i) },
            },
        }
        members[i] = {
            corpid = corpid, corp_name = corps[i].corp_name, groupid = 1,
            custom_id = format("G%06d", i), qualification_status = 2,
        }
    end
    return {
        upstream = {
            corpid = "wwUPSTREAMCORP",
            corp_name = "Upstream Corp",
            qualification_status = 3,
            apps = json.array {
                { agentid = 1000002, name = "Chain System App", secret = "system-app-secret-0001",
                  system = true,
                  callback = { token = "sysToken42", aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" } },
                { agentid = 1000003, name = "Ordinary App", secret = "ordinary-app-secret-0001",
                  system = false, visible_range = { chains = json.array() },
                  callback = { token = "ordToken42", aes_key = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq" } },
            },
            users = json.array {
                { userid = "admin", name = "Admin", department = json.array { 1 }, mobile = "13800000000" },
            },
        },
        downstream = corps,
        chains = json.array {
            { chain_id = "ChGENERATED", chain_name = "Generated Chain",
              creator_corpid = "wwUPSTREAMCORP", groups = json.array(), corps = members },
        },
        -- the bundled suites, installable by every generated corp
        provider = require("wecom.emulator.provider").generated("wwUPSTREAMCORP", corpids),
    }
end

local function check_app(app, where)
    if type(app) ~= "table" then
        fail(where .. " must be an object")
    end
    if type(app.agentid) ~= "number" then
        fail(where .. ".agentid must be a number")
    end
    if type(app.secret) ~= "string" or app.secret == "" then
        fail(where .. ".secret must be a non-empty string")
    end
    if app.callback ~= nil and (type(app.callback) ~= "table"
        or type(app.callback.token) ~= "string" or type(app.callback.aes_key) ~= "string") then
        fail(where .. ".callback must have token and aes_key strings")
    end
    if app.callback ~= nil and app.callback.url ~= nil
        and (type(app.callback.url) ~= "string" or not app.callback.url:match("^https?://[^/]")) then
        fail(where .. ".callback.url must be an http:// or https:// URL")
    end
end

-- Builds the lookup tables the handlers use.
local function index(f)
    if type(f) ~= "table" or type(f.upstream) ~= "table" then
        fail("upstream is required")
    end
    local up = f.upstream
    if type(up.corpid) ~= "string" or up.corpid == "" then
        fail("upstream.corpid must be a non-empty string")
    end
    if type(up.apps) ~= "table" or #up.apps == 0 then
        fail("upstream.apps must be a non-empty list")
    end
    up.corp_name = up.corp_name or up.corpid
    up.qualification_status = up.qualification_status or 3

    local F = {
        data = f,
        upstream = up,
        corps = {},          -- corpid -> corp (upstream and downstream)
        apps = {},           -- upstream agentid -> app
        shares = {},         -- upstream agentid -> business_type -> list
        share_of = {},       -- "corpid/agentid/bt" -> share
        chains = {},         -- chain_id -> chain
        chain_list = {},     -- chains in fixture order
        customers = {},      -- unionid -> customer
        external = {},       -- external_userid -> customer
    }

    local function add_corp(corp, apps, where)
        if type(corp.corpid) ~= "string" or corp.corpid == "" then
            fail(where .. ".corpid must be a non-empty string")
        end
        if F.corps[corp.corpid] then
            fail("duplicate corpid " .. corp.corpid)
        end
        corp.apps_by_id = {}
        for i, app in ipairs(apps or {}) do
            if type(app.agentid) ~= "number" then
                fail(format("%s.agents[%d].agentid must be a number", where, i))
            end
            corp.apps_by_id[app.agentid] = app
        end
        corp.users_by_id = {}
        for _, user in ipairs(corp.users or {}) do
            corp.users_by_id[user.userid] = user
        end
        F.corps[corp.corpid] = corp
    end

    for i, app in ipairs(up.apps) do
        check_app(app, format("upstream.apps[%d]", i))
        F.apps[app.agentid] = app
        F.shares[app.agentid] = { [0] = {}, [1] = {} }
        if app.system and not F.system_app then
            F.system_app = app
        end
    end
    add_corp(up, up.apps, "upstream")

    for i, corp in ipairs(f.downstream or {}) do
        local where = format("downstream[%d]", i)
        add_corp(corp, corp.agents, where)
        corp.corp_name = corp.corp_name or corp.corpid
        for _, agent in ipairs(corp.agents or {}) do
            local from = agent.shared_from
            if from ~= nil then
                if not F.apps[from] then
                    fail(format("%s: agent %d is shared from unknown upstream app %s", where,
                        agent.agentid, tostring(from)))
                end
                local bt = agent.business_type or 0
                local share = {
                    corpid = corp.corpid, corp_name = corp.corp_name, agentid = agent.agentid,
                    business_type = bt, upstream_agentid = from,
                    confirmed = agent.confirmed ~= false,
                }
                local list = F.shares[from][bt]
                if not list then
                    fail(where .. ": business_type must be 0 or 1")
                end
                list[#list + 1] = share
                F.share_of[corp.corpid .. "/" .. agent.agentid .. "/" .. bt] = share
            end
        end
    end

    for i, chain in ipairs(f.chains or {}) do
        if type(chain.chain_id) ~= "string" then
            fail(format("chains[%d].chain_id must be a string", i))
        end
        chain.creator_corpid = chain.creator_corpid or up.corpid
        chain.groups = chain.groups or json.array()
        chain.corps = chain.corps or json.array()
        F.chains[chain.chain_id] = chain
        F.chain_list[#F.chain_list + 1] = chain
    end

    for _, customer in ipairs(f.customers or {}) do
        F.customers[customer.unionid] = customer
        for _, ext in ipairs(customer.external_userids or {}) do
            F.external[ext.external_userid] = customer
        end
    end

    F.linked = f.linkedcorp or { departments = {}, users = {}, perm = {} }
    F.provider = require("wecom.emulator.provider").index(f.provider, F)
    return F
end

-- load{ fixture = path | nil, corps = n | nil, default = json_text }
function _M.load(opts)
    local text
    if opts.corps and opts.corps > 0 then
        text = assert(json.encode(_M.generate(opts.corps)))
    elseif opts.fixture and opts.fixture ~= "" then
        text = read_file(opts.fixture)
    else
        text = require("wecom.emulator.default_fixture")
    end
    local data, err = json.decode(text)
    if data == nil then
        fail("invalid JSON: " .. tostring(err))
    end
    loaded = index(data)
    loaded_text = text
    return loaded
end

function _M.get()
    return loaded
end

function _M.text()
    return loaded_text
end

return _M
