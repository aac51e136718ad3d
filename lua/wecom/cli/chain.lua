-- bin/wecom's 上下游 commands: chains, groups, corps, import, job, unionid.

local ceil = math.ceil
local concat = table.concat
local floor = math.floor
local huge = math.huge
local ipairs = ipairs
local pairs = pairs
local sort = table.sort
local tonumber = tonumber
local tostring = tostring
local type = type

local args = require "wecom.cli.args"
local json = require "wecom.json"
local budget = require "wecom.budget"
local core = require "wecom.core"
local errors = require "wecom.errors"
local parallel = require "wecom.parallel"

local _M = {}

local usage_error = args.usage_error

-- the ids a chain's corps are known by
local CORP_COLUMNS = {
    { "corpid" }, { "pending_corpid" }, { "corp_name" }, { "is_joined" }, { "groupid" }, { "group_path" },
    { "custom_id" },
}

---------------------------------------------------------------------------
-- The group tree
---------------------------------------------------------------------------

local ROOT = 1

-- tree(groups) -> { [groupid] = { group, children = {...} } }, with the
-- children in the admin console's order (larger `order` first)
local function tree(groups)
    local nodes = { [ROOT] = { group = { groupid = ROOT, group_name = "" }, children = {} } }
    for _, g in ipairs(groups) do
        if type(g) == "table" and type(g.groupid) == "number" then
            nodes[g.groupid] = { group = g, children = {} }
        end
    end
    for id, node in pairs(nodes) do
        local parent = node.group.parentid
        if id ~= ROOT then
            -- a group whose parent the app cannot see hangs from the root
            local p = nodes[parent] or nodes[ROOT]
            if p == node then
                p = nodes[ROOT]
            end
            p.children[#p.children + 1] = node
        end
    end
    for _, node in pairs(nodes) do
        sort(node.children, function(a, b)
            local oa, ob = a.group.order or 0, b.group.order or 0
            if oa ~= ob then
                return oa > ob
            end
            return a.group.groupid < b.group.groupid
        end)
    end
    return nodes
end

-- "华北区/北京市" for every group (the root: "")
local function paths(nodes)
    local out, seen = {}, {}
    local function walk(node, prefix)
        local id = node.group.groupid
        if seen[id] then
            return
        end
        seen[id] = true
        out[id] = prefix
        for _, child in ipairs(node.children) do
            local name = tostring(child.group.group_name or child.group.groupid)
            walk(child, prefix == "" and name or (prefix .. "/" .. name))
        end
    end
    walk(nodes[ROOT], "")
    return out
end

-- Lines of a tree: each item is { text, children = {...} }.
local function draw(items, lines, indent)
    for i, item in ipairs(items) do
        local last = i == #items
        lines[#lines + 1] = indent .. (last and "└── " or "├── ") .. item.text
        if item.children and #item.children > 0 then
            draw(item.children, lines, indent .. (last and "    " or "│   "))
        end
    end
    return lines
end

local function group_label(g)
    return tostring(g.group_name) .. " [" .. tostring(g.groupid) .. "]"
end

local function chain_label(ctx, chain_id)
    local chains = ctx:call(ctx:app().chain:list())
    for _, c in ipairs(chains) do
        if c.chain_id == chain_id then
            return tostring(c.chain_name) .. " (" .. chain_id .. ")"
        end
    end
    return chain_id
end

---------------------------------------------------------------------------
-- chains, groups, corps
---------------------------------------------------------------------------

local chains = {
    name = "chains",
    summary = "the chains (上下游) the app can see",
    usage = "wecom chains",
    help = [[
Lists the chains of the upstream corp that the app can see (get_chain_list):
chain_id and chain_name. Needs the chain system app or an app whose visible
range names the chains.]],
}

function chains.run(ctx)
    local list = ctx:call(ctx:app().chain:list())
    ctx.out:rows(list, { { "chain_id" }, { "chain_name" } })
end

local groups = {
    name = "groups",
    summary = "the group tree of a chain",
    usage = "wecom groups CHAIN_ID",
    args = { "CHAIN_ID" },
    help = [[
The groups of a chain (get_chain_group). The table format draws the tree
(larger `order` first, as in the admin console); json and csv give one record
per group: groupid, group_name, parentid, order, path.]],
}

function groups.run(ctx, _, positional)
    local chain_id = positional[1]
    local app = ctx:app()
    local list = ctx:call(app.chain:groups(chain_id))
    local nodes = tree(list)
    local path = paths(nodes)
    for _, g in ipairs(list) do
        g.path = path[g.groupid]
    end
    local function items(node)
        local out = {}
        for _, child in ipairs(node.children) do
            out[#out + 1] = { text = group_label(child.group), children = items(child) }
        end
        return out
    end
    local text
    if ctx.out.format == "table" then
        local lines = draw(items(nodes[ROOT]), { chain_label(ctx, chain_id) }, "")
        text = concat(lines, "\n") .. "\n"
    end
    ctx.out:rows(list, { { "groupid" }, { "group_name" }, { "parentid" }, { "order" }, { "path" } }, text)
end

local corps = {
    name = "corps",
    summary = "the corps of a chain, under their groups",
    usage = "wecom corps --chain CHAIN_ID [--pending] [--group GROUPID] [--no-subgroups]",
    options = {
        chain = { value = "CHAIN_ID" },
        pending = {},
        group = { value = "GROUPID", check = args.integer(1) },
        ["no-subgroups"] = {},
    },
    help = [[
Every corp of a chain (get_chain_corpinfo_list, all pages), walking the group
tree from the root or from --group.

  --chain CHAIN_ID   the chain (required)
  --pending          also the corps invited but not joined yet (pending_corpid)
  --group GROUPID    start at this group instead of the root
  --no-subgroups     only the corps directly in that group

The table format draws the group tree with each group's corps; json and csv
give one record per corp: corpid (pending_corpid for a corp not joined yet),
corp_name, is_joined, groupid, group_path, custom_id.]],
}

function corps.run(ctx, opts)
    local chain_id = opts.chain
    if not chain_id or chain_id == "" then
        usage_error("--chain CHAIN_ID is required")
    end
    local app = ctx:app()
    local group_list = ctx:call(app.chain:groups(chain_id))
    local nodes = tree(group_list)
    local path = paths(nodes)
    local bar = ctx.out:progress(nil, "corps")
    local list = {}
    local ok, err = pcall(function()
        for corp in app.chain:corps { chain_id = chain_id, groupid = opts.group,
                                     need_pending = opts.pending or nil,
                                     recursive = not opts["no-subgroups"] } do
            corp.group_path = path[corp.groupid] or ""
            list[#list + 1] = corp
            bar:step()
        end
    end)
    bar:done()
    if not ok then
        ctx:fail(err)
    end
    local text
    if ctx.out.format == "table" then
        local by_group = {}
        for _, c in ipairs(list) do
            local g = c.groupid or ROOT
            by_group[g] = by_group[g] or {}
            local id = c.is_joined and c.corpid or ("pending " .. tostring(c.pending_corpid))
            by_group[g][#by_group[g] + 1] = { text = id .. "  " .. tostring(c.corp_name) }
        end
        local function items(node)
            local out = {}
            for _, c in ipairs(by_group[node.group.groupid] or {}) do
                out[#out + 1] = c
            end
            for _, child in ipairs(node.children) do
                local sub = items(child)
                if #sub > 0 then
                    out[#out + 1] = { text = group_label(child.group), children = sub }
                end
            end
            return out
        end
        local start = nodes[opts.group or ROOT] or nodes[ROOT]
        local title = chain_label(ctx, chain_id)
        if opts.group and nodes[opts.group] then
            title = title .. " / " .. group_label(nodes[opts.group].group)
        end
        local lines = draw(items(start), { title }, "")
        lines[#lines + 1] = #list .. (#list == 1 and " corp" or " corps")
        text = concat(lines, "\n") .. "\n"
    end
    ctx.out:rows(list, CORP_COLUMNS, text)
end

---------------------------------------------------------------------------
-- import
---------------------------------------------------------------------------

local IDENTITY = { ["1"] = 1, ["2"] = 2, member = 1, leader = 2, ["成员"] = 1, ["负责人"] = 2 }

-- contact_list(records) -> the import body's contact_list (one entry per
-- corp_name, in the order of first appearance) | raises an input error
local function contact_list(ctx, records, columns)
    local have = {}
    for _, c in ipairs(columns) do
        have[c] = true
    end
    for _, need in ipairs { "corp_name", "name", "identity_type", "mobile" } do
        if not have[need] then
            ctx:input_error("the CSV has no '" .. need .. "' column (columns: corp_name, group_path, custom_id,"
                .. " name, identity_type, mobile, user_custom_id)")
        end
    end
    local list, by_name = {}, {}
    for _, r in ipairs(records) do
        local where = "line " .. r.line .. ": "
        for _, need in ipairs { "corp_name", "name", "identity_type", "mobile" } do
            if r[need] == "" then
                ctx:input_error(where .. need .. " is empty")
            end
        end
        local identity = IDENTITY[r.identity_type]
        if not identity then
            ctx:input_error(where .. "identity_type must be 1 (member) or 2 (leader) (got '" .. r.identity_type .. "')")
        end
        local corp = by_name[r.corp_name]
        if not corp then
            corp = { corp_name = r.corp_name, contact_info_list = {} }
            if (r.group_path or "") ~= "" then
                corp.group_path = r.group_path
            end
            if (r.custom_id or "") ~= "" then
                corp.custom_id = r.custom_id
            end
            by_name[r.corp_name] = corp
            list[#list + 1] = corp
        else
            for _, k in ipairs { "group_path", "custom_id" } do
                if (r[k] or "") ~= "" and r[k] ~= (corp[k] or "") then
                    ctx:input_error(where .. k .. " '" .. r[k] .. "' differs from an earlier row of " .. r.corp_name)
                end
            end
        end
        local contact = { name = r.name, identity_type = identity, mobile = r.mobile }
        if (r.user_custom_id or "") ~= "" then
            contact.user_custom_id = r.user_custom_id
        end
        corp.contact_info_list[#corp.contact_info_list + 1] = contact
    end
    if #list == 0 then
        ctx:input_error("the CSV has no contacts")
    end
    return list
end

local JOB_STATUS = { [1] = "started", [2] = "running", [3] = "finished" }
local IMPORT_STATUS = { [1] = "all corps imported", [2] = "some corps imported", [3] = "no corp imported" }

-- failures(result) -> one record per failed contact (or per failed corp)
local function failures(result)
    local out = {}
    for _, f in ipairs(type(result.fail_list) == "table" and result.fail_list or {}) do
        local contacts = type(f.contact_info_list) == "table" and f.contact_info_list or {}
        if #contacts == 0 then
            out[#out + 1] = { corp_name = f.corp_name, custom_id = f.custom_id, errcode = f.errcode,
                              errmsg = f.errmsg }
        end
        for _, c in ipairs(contacts) do
            out[#out + 1] = { corp_name = f.corp_name, custom_id = f.custom_id, errcode = f.errcode,
                              errmsg = f.errmsg, mobile = c.mobile or c.user_mobile,
                              contact_errcode = c.errcode, contact_errmsg = c.errmsg }
        end
    end
    return out
end

local FAIL_COLUMNS = { { "corp_name" }, { "custom_id" }, { "errcode" }, { "errmsg" }, { "mobile" },
                       { "contact_errcode" }, { "contact_errmsg" } }

-- Waits for the job with a line of progress; -> result
local function wait(ctx, app, jobid, timeout, interval)
    local bar = ctx.out:progress(nil, "job " .. jobid)
    local started = core.monotonic()
    local last
    while true do
        local job, err = app.chain:job_result(jobid)
        if not job then
            bar:done()
            ctx:fail(err)
        end
        local elapsed = core.monotonic() - started
        local status = JOB_STATUS[job.status] or tostring(job.status)
        bar:set_status(status .. " " .. floor(elapsed) .. "s")
        if status ~= last and not ctx.out.show_progress then
            ctx.out:note("job %s: %s", jobid, status)
        end
        last = status
        if job.status == 3 then
            bar:done()
            return job.result or {}
        end
        if elapsed >= timeout then
            bar:done()
            ctx:fail(require("wecom.errors").new("timeout", "import job " .. jobid .. " not finished after "
                .. timeout .. "s (status " .. status .. "); see it later with `wecom job " .. jobid .. "`",
                { method = "GET", path = "/cgi-bin/corpgroup/getresult" }))
        end
        parallel.sleep(interval)
    end
end

local function report(ctx, jobid, result)
    local status = tonumber(result.import_status)
    ctx.out:note("job %s: %s", jobid, IMPORT_STATUS[status] or ("import_status " .. tostring(result.import_status)))
    local failed = failures(result)
    if ctx.out.format == "json" then
        result.jobid = jobid
        ctx.out:write(json.encode(result) or "{}", "\n")
    elseif #failed > 0 then
        ctx.out:rows(failed, FAIL_COLUMNS)
    end
    if status ~= 1 then
        ctx.partial = true
    end
end

local import = {
    name = "import",
    summary = "import contacts into a chain from a CSV and wait for the job",
    usage = "wecom import CHAIN_ID FILE.csv [--dry-run] [--no-wait] [--timeout SECONDS] [--interval SECONDS]",
    args = { "CHAIN_ID", "FILE" },
    options = {
        ["dry-run"] = {},
        ["no-wait"] = {},
        timeout = { value = "SECONDS", check = args.number(0) },
        interval = { value = "SECONDS", check = args.number(0.1) },
    },
    help = [[
Imports corps and their contacts into a chain (import_chain_contact), then
follows the job (getresult) to the end, a progress line on a terminal.

FILE is CSV (UTF-8, the first line names the columns; `-` reads stdin), one
row per contact; rows with the same corp_name make one corp:
  corp_name       required, 1-32 characters
  group_path      optional: the group for a new corp, e.g. 华北区/北京市
  custom_id       optional: the corp's custom id
  name            required: the contact's name
  identity_type   required: 1 or member (成员), 2 or leader (负责人)
  mobile          required: digits, or +<country code><number>
  user_custom_id  optional

  --dry-run            check the file and print the request body; send nothing
  --no-wait            print the job id and exit; see the result with `wecom job`
  --timeout SECONDS    how long to wait for the job (default 600)
  --interval SECONDS   between two looks at the job (default 1)

The result: import_status on stderr; the corps and contacts that failed as
records (corp_name, custom_id, errcode, errmsg, mobile, contact_errcode,
contact_errmsg), or with --format json the job's whole result. Exit status 1
when some corp was not imported. WeCom runs one import job at a time per
corp: a second one fails with 45033 (exit status of rate_limit).]],
}

function import.run(ctx, opts, positional)
    local chain_id, file = positional[1], positional[2]
    local records, columns = ctx:read_csv(file)
    local list = contact_list(ctx, records, columns)
    local body = { chain_id = chain_id, contact_list = list }
    if opts["dry-run"] then
        ctx.out:note("dry run: %d corps, %d contacts; nothing sent", #list, #records)
        ctx.out:write(json.encode(body) or "{}", "\n")
        return
    end
    local app = ctx:app()
    local jobid = ctx:call(app.chain:import_contacts(body))
    ctx.out:note("job %s submitted: %d corps, %d contacts", jobid, #list, #records)
    if opts["no-wait"] then
        ctx.out:write(jobid, "\n")
        return
    end
    local result = wait(ctx, app, jobid, opts.timeout or 600, opts.interval or 1)
    report(ctx, jobid, result)
end

local job = {
    name = "job",
    summary = "the state or result of an import job",
    usage = "wecom job JOBID [--wait] [--timeout SECONDS]",
    args = { "JOBID" },
    options = {
        wait = {},
        timeout = { value = "SECONDS", check = args.number(0) },
        interval = { value = "SECONDS", check = args.number(0.1) },
    },
    help = [[
Shows an import job (getresult): its status (started, running, finished) and,
once finished, the result as `wecom import` prints it. --wait follows it to the
end.]],
}

function job.run(ctx, opts, positional)
    local jobid = positional[1]
    local app = ctx:app()
    local result
    if opts.wait then
        result = wait(ctx, app, jobid, opts.timeout or 600, opts.interval or 1)
    else
        local j = ctx:call(app.chain:job_result(jobid))
        if j.status ~= 3 then
            ctx.out:note("job %s: %s", jobid, JOB_STATUS[j.status] or tostring(j.status))
            ctx.out:write(JOB_STATUS[j.status] or tostring(j.status), "\n")
            return
        end
        result = j.result or {}
    end
    report(ctx, jobid, result)
end

---------------------------------------------------------------------------
-- unionid conversions
---------------------------------------------------------------------------

-- "25/s", "1500/m", "90000/h" (a bare number: per second) -> { seconds, calls },
-- a window of wecom.budget
local function rate(v)
    local n, unit = v:match("^(%d+)/?([smh]?)$")
    n = tonumber(n)
    if not n or n < 1 then
        return nil, "must be N/s, N/m or N/h (N >= 1 calls)"
    end
    local per = { [""] = 1, s = 1, m = 60, h = 3600 }
    return { per[unit], n }
end

-- WeCom's quotas of both conversions (reference §3.11, §3.12; wecom.budget):
-- 100,000 calls an hour, 480,000 a day and 7,500,000 a month per upstream
-- corp, and the base limit of every API, 10,000 a minute.
local function quota_limits()
    local limits = {}
    for _, set in ipairs { budget.BASE, budget.IDCONVERT } do
        for _, w in ipairs(set) do
            limits[#limits + 1] = { w[1], w[2] }   -- (the tighter of two hour windows rules)
        end
    end
    return limits
end

-- the longest the run waits for the budget before it stops (seconds)
local MAX_WAIT = 600

-- Kinds that stop the run: every further call would fail the same way.
local FATAL = { token = true, rate_limit = true, transport = true, timeout = true, tls = true, store = true }

local unionid = {
    name = "unionid",
    summary = "convert unionids from a CSV to external_userids or pending_ids",
    usage = "wecom unionid FILE.csv [--to external_userid|pending_id] [--corp CORPID] [--rate N/s|N/m|N/h]"
        .. " [--concurrency N]",
    args = { "FILE" },
    options = {
        to = { value = "ID", check = args.one_of { "external_userid", "pending_id" } },
        corp = { value = "CORPID" },
        rate = { value = "RATE", check = rate },
        concurrency = { value = "N", check = args.integer(1, 64) },
    },
    help = [[
Converts WeChat users (unionid + openid of the same mini program) in bulk:
  --to external_userid  (default) unionid_to_external_userid: the user's
                        external_userid in each downstream corp where it is a
                        customer; --corp CORPID asks for that corp only
  --to pending_id       unionid_to_pending_id: a pending_id for users who are
                        nobody's customer yet

FILE is CSV with the columns unionid and openid (and optionally corpid, which
overrides --corp for its row); `-` reads stdin. Output: one record per
external_userid found (unionid, openid, corpid, external_userid; a user with
none gets one record with those empty), or per user (unionid, openid,
pending_id); a row WeCom refused has its error in `error`, and the exit status
is then 1.

  --rate N/s|N/m|N/h  a pace of your own on top of the budget the run always
                 keeps: WeCom's quota of 100000 calls an hour, 480000 a day and
                 7500000 a month per upstream corp, and 10000 a minute
                 (wecom.budget); the run waits for room, up to 10 minutes at
                 a time
  --concurrency  calls in flight at once (default 4)

A rate limit (45009/45033), a rejected secret or a network failure stops the
run: the records done so far are printed and the exit status tells why.]],
}

function unionid.run(ctx, opts, positional)
    local records, columns = ctx:read_csv(positional[1])
    local have = {}
    for _, c in ipairs(columns) do
        have[c] = true
    end
    if not (have.unionid and have.openid) then
        ctx:input_error("the CSV needs the columns unionid and openid")
    end
    for _, r in ipairs(records) do
        if r.unionid == "" or r.openid == "" then
            ctx:input_error("line " .. r.line .. ": unionid and openid must not be empty")
        end
    end
    local to = opts.to or "external_userid"
    local limits = quota_limits()
    if opts.rate then
        table.insert(limits, 1, opts.rate)
    end
    local calls = budget.new { limits = limits }
    local app = ctx:app()
    local chain = app.chain

    local out = {}
    local failed, done, fatal = 0, 0, nil
    local bar = ctx.out:progress(#records, to == "pending_id" and "unionid -> pending_id"
        or "unionid -> external_userid")
    -- a call from the budget, waiting (in the scheduler) until one fits
    local function take()
        while not fatal do
            local ok, seconds = calls:take()
            if ok then
                return true
            end
            if seconds > MAX_WAIT then
                fatal = errors.new("rate_limit", "the call budget is spent; room again in "
                    .. (seconds == huge and "never" or (ceil(seconds) .. " s")))
                return false
            end
            parallel.sleep(seconds)
        end
        return false
    end

    local function convert(r)
        if fatal or not take() then
            return
        end
        local res, err
        if to == "pending_id" then
            res, err = chain:unionid_to_pending_id { unionid = r.unionid, openid = r.openid }
        else
            local corpid = r.corpid
            if corpid == nil or corpid == "" then
                corpid = opts.corp
            end
            res, err = chain:unionid_to_external_userid { unionid = r.unionid, openid = r.openid,
                                                          corpid = corpid }
        end
        bar:step()
        if not res and FATAL[err.kind] then
            fatal = fatal or err
            return
        end
        done = done + 1
        if not res then
            failed = failed + 1
            return { { unionid = r.unionid, openid = r.openid, error = tostring(err) } }
        end
        if to == "pending_id" then
            return { { unionid = r.unionid, openid = r.openid, pending_id = res } }
        end
        local rows = {}
        for _, m in ipairs(res) do
            rows[#rows + 1] = { unionid = r.unionid, openid = r.openid, corpid = m.corpid,
                                external_userid = m.external_userid }
        end
        if #rows == 0 then
            rows[1] = { unionid = r.unionid, openid = r.openid }
        end
        return rows
    end

    local tasks = {}
    for i, r in ipairs(records) do
        tasks[i] = function() return convert(r) end
    end
    local results = parallel.run(tasks, { concurrency = opts.concurrency or 4 })
    bar:done()
    for _, res in ipairs(results) do
        if res.ok and res.value then
            for _, row in ipairs(res.value) do
                out[#out + 1] = row
            end
        elseif not res.ok then
            fatal = fatal or res.err
        end
    end
    local columns_out = to == "pending_id"
        and { { "unionid" }, { "openid" }, { "pending_id" }, { "error" } }
        or { { "unionid" }, { "openid" }, { "corpid" }, { "external_userid" }, { "error" } }
    ctx.out:rows(out, columns_out)
    if failed > 0 then
        ctx.out:note("%d of %d users failed (see the error column)", failed, #records)
        ctx.partial = true
    end
    if fatal then
        ctx.out:note("stopped early: %d of %d users done", done, #records)
        ctx:fail(fatal)
    end
end

_M.commands = { chains, groups, corps, import, job, unionid }

-- exposed for the unit specs
_M.tree, _M.paths, _M.rate = tree, paths, rate

return _M
