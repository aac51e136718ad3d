-- wecom.ngx.callback_handler's log lines in a real nginx: whatever the
-- request or the event handler carries (a receive id or an event type with
-- a newline, a 4 MB multi-line error), every line the handler writes to
-- error.log is one line, with control characters escaped, and bounded (the
-- peer's or handler's text cut at 512 bytes, with a marker).

local callback_nginx = require "helpers.callback_nginx"

local TOKEN = "LimitsSpecTokenR2"
local AES_KEY = "TGltaXRzU3BlY0tleUZvclRoZUhhbmRsZXIxMjM0NTY"
local CORPID = "wwLIMITSSPEC"

local CONF = callback_nginx.conf {
    log_level = "info",
    dicts = { results = "1m" },
    servers = { { text = [[
        location = /cb {
            content_by_lua_block { require("callback_site").handle() }
        }
        location = /cb_fail {
            content_by_lua_block { require("callback_site").fail() }
        }
]] } },
}

-- every line nginx writes starts with its timestamp
local LINE_START = "^%d%d%d%d/%d%d/%d%d %d%d:%d%d:%d%d %["

local event_xml = callback_nginx.event_xml

describe("wecom.ngx.callback_handler log lines", function()
    local t = callback_nginx.use(CONF, { token = TOKEN, aes_key = AES_KEY, receive_id = CORPID })

    -- the lines of error.log that hold `needle`, after checking that every
    -- line of the file is a line nginx started
    local function lines_with(needle)
        local found = {}
        for line in t.site:log():gmatch("[^\n]+") do
            assert.truthy(line:find(LINE_START), "a line nginx did not start: " .. line:sub(1, 200))
            if line:find(needle, 1, true) then
                found[#found + 1] = line
            end
        end
        return found
    end

    it("escapes a newline in a decrypted receive id", function()
        local status = t:post("/cb", event_xml("subscribe"), { receive_id = "wwEVIL\nFORGED RECEIVE ID LINE" })
        assert.equal(403, status)
        local lines = lines_with("FORGED RECEIVE ID LINE")
        assert.equal(1, #lines)
        assert.truthy(lines[1]:find("rejected POST (403)", 1, true))
        assert.truthy(lines[1]:find("wwEVIL\\nFORGED RECEIVE ID LINE", 1, true))
    end)

    it("escapes the event type and bounds the handler's error in the failure line", function()
        -- (XML turns a CR LF into LF: the type arrives as "bad\ntype\t...")
        local status = t:post("/cb_fail", event_xml("bad\r\ntype\tFORGED EVENT TYPE LINE"))
        assert.equal(500, status)
        local lines = lines_with("FORGED EVENT TYPE LINE")
        assert.equal(1, #lines)
        local line = lines[1]
        assert.truthy(line:find("[error]", 1, true))
        assert.truthy(line:find("handler for event bad\\ntype\\tFORGED EVENT TYPE LINE failed", 1, true))
        assert.truthy(line:find("\\nFORGED LOG LINE\\n", 1, true))
        -- 4 MB of error text: cut, with a marker saying how much
        assert.truthy(line:find("[truncated]", 1, true), line:sub(-200))
        assert.is_true(#line < 1500, "line of " .. #line .. " bytes")
    end)

    it("bounds a long event type", function()
        local long_type = "long" .. string.rep("t", 5000) .. "END-OF-TYPE"
        assert.equal(500, (t:post("/cb_fail", event_xml(long_type))))
        local lines = lines_with("handler for event longttt")
        assert.equal(1, #lines)
        assert.is_nil(lines[1]:find("END-OF-TYPE", 1, true))
        assert.is_true(#lines[1] < 2000, "line of " .. #lines[1] .. " bytes")
    end)
end)
