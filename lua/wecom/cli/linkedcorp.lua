-- bin/wecom's 企业互联 command: linked-send.

local ipairs = ipairs

local args = require "wecom.cli.args"
local json = require "wecom.json"

local _M = {}

local usage_error = args.usage_error

local linked_send = {
    name = "linked-send",
    summary = "send a message to linked-corp members (--dry-run shows it instead)",
    usage = "wecom linked-send (--user CORPID/USERID ... | --department LINKEDID/DEPTID ... | --all)"
        .. " (--text TEXT | --markdown TEXT) [--dry-run]",
    options = {
        user = { value = "CORPID/USERID", many = true },
        department = { value = "LINKEDID/DEPTID", many = true },
        all = {},
        text = { value = "TEXT" },
        markdown = { value = "TEXT" },
        ["dry-run"] = {},
    },
    help = [[
Sends an app message to members of linked corps (linkedcorp/message/send).

  --user CORPID/USERID         a member (repeat the option for more)
  --department LINKEDID/DEPTID a department of a linked corp (repeatable)
  --all                        everyone the app's linked-corp permission list
                               covers (its members and departments)
  --text TEXT | --markdown TEXT  the message
  --dry-run                    print the request body and the recipients'
                               count; send nothing

The result lists the recipients WeCom refused (invaliduser, invalidparty);
the exit status is 1 when there are any.]],
}

function linked_send.run(ctx, opts)
    if opts.text and opts.markdown then
        usage_error("give --text or --markdown, not both")
    end
    if not (opts.text or opts.markdown) then
        usage_error("the message is missing (--text TEXT or --markdown TEXT)")
    end
    if not (opts.user or opts.department or opts.all) then
        usage_error("no recipients (--user, --department or --all)")
    end
    local app = ctx:app()
    if app.agentid == nil then
        ctx:config_error("agentid is not set (WECOM_AGENTID, --agentid, `agentid =` in the config file):"
            .. " the message is sent as that app")
    end
    local users, departments = {}, {}
    for _, u in ipairs(opts.user or {}) do
        users[#users + 1] = u
    end
    for _, d in ipairs(opts.department or {}) do
        departments[#departments + 1] = d
    end
    if opts.all then
        local perm = ctx:call(app.linkedcorp:perm_list())
        for _, u in ipairs(perm.userids) do
            users[#users + 1] = u
        end
        for _, d in ipairs(perm.department_ids) do
            departments[#departments + 1] = d
        end
    end
    if #users == 0 and #departments == 0 then
        ctx.out:note("nobody to send to: the app's permission list is empty")
        return
    end
    local message = {
        touser = #users > 0 and json.array(users) or nil,
        toparty = #departments > 0 and json.array(departments) or nil,
        msgtype = opts.markdown and "markdown" or "text",
        agentid = app.agentid,
    }
    message[message.msgtype] = { content = opts.markdown or opts.text }
    if opts["dry-run"] then
        ctx.out:note("dry run: %d members, %d departments; nothing sent", #users, #departments)
        ctx.out:write(json.encode(message) or "{}", "\n")
        return
    end
    local result = ctx:call(app.linkedcorp:send(message))
    local rows = {}
    for _, name in ipairs { "invaliduser", "invalidparty", "invalidtag" } do
        for _, id in ipairs(result[name]) do
            rows[#rows + 1] = { refused = name, id = id }
        end
    end
    ctx.out:note("sent to %d members, %d departments; %d refused", #users, #departments, #rows)
    if #rows > 0 or ctx.out.format ~= "table" then
        ctx.out:rows(rows, { { "refused" }, { "id" } })
    end
    if #rows > 0 then
        ctx.partial = true
    end
end

_M.commands = { linked_send }

return _M
