-- The example scripts say how to run them: --help works before any module
-- is loaded (no LUA_PATH needed) and exits 0; jsapi_config.lua says when it
-- signs its default URL.

local emu = require "helpers.emulator"
local child = require "helpers.child"
local sh = require "helpers.sh"

local SCRIPTS = { "callback_roundtrip", "chain_report", "export_chain_corps_csv", "jsapi_config",
                  "message_linked_users" }

local function run(cmd)
    local tmp = os.tmpname()
    local status = sh.capture(cmd .. " >" .. sh.quote(tmp) .. " 2>" .. sh.quote(tmp .. ".err") .. "; echo $?")
    local out, err = sh.read_file(tmp) or "", sh.read_file(tmp .. ".err") or ""
    os.remove(tmp)
    os.remove(tmp .. ".err")
    return tonumber(status:match("(%d+)%s*$")), out, err
end

describe("examples", function()
    it("answer --help and -h with how to run them, without the module paths", function()
        for _, name in ipairs(SCRIPTS) do
            for _, flag in ipairs { "--help", "-h" } do
                local status, out, err = run("env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
                    .. child.interpreter .. " examples/" .. name .. ".lua " .. flag)
                assert.equal(0, status, name .. ": " .. err)
                assert.matches("^" .. name .. ": ", out)
                assert.matches("LUA_PATH='lua/?.lua;lua/?/init.lua;;'", out, 1, true)
                assert.matches("with the rock installed", out, 1, true)
            end
        end
    end)

    describe("against the emulator", function()
        local info
        emu.hooks(function(_, _, _, i)
            info = i
        end)

        it("jsapi_config.lua says that it signs its default URL", function()
            local status, out, err = run(string.format("WECOM_BASE_URL=%s WECOM_CA_FILE=%s LUA_PATH=%s LUA_CPATH=%s %s "
                .. "examples/jsapi_config.lua", sh.quote(info.base_url), sh.quote(info.ca_file),
                sh.quote(package.path), sh.quote(package.cpath), child.interpreter))
            assert.equal(0, status, err)
            assert.equal("jsapi_config: no URL given, signing https://app.example.com/page?from=wecom"
                .. " (usage: --help)\n", err)
            assert.equal("https://app.example.com/page?from=wecom", require("wecom.json").decode(out).url)
        end)
    end)
end)
