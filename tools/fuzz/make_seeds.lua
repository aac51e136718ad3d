-- tools/fuzz/make_seeds.lua - writes the seed corpora under tools/fuzz/corpus/
-- from the reference test vectors (reference/wecom-api.md §7.7, §9.6) and
-- shapes the specs use.  Needs wecom.core on LUA_CPATH (for encrypt):
--   LUA_CPATH='build/lua5.4/?.so;;' lua5.4 tools/fuzz/make_seeds.lua
local core = require "wecom.core"

local dir = arg[1] or "tools/fuzz/corpus"
local SEP = "\255"

local V1_TOKEN, V1_KEY = "QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
local V1_RID = "wx5823bf96d3bd56c7"
local V1_PLAIN = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
  .. "<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n"
  .. "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
  .. "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
local V1_ENCRYPT = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3"
  .. "QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs"
  .. "8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4"
  .. "LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rU"
  .. "PA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ"
  .. "2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
local V1_ECHO = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
local BATCH_JOB = "<xml><ToUserName><![CDATA[wwCORP]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
  .. "<CreateTime>1425284517</CreateTime><MsgType><![CDATA[event]]></MsgType>"
  .. "<Event><![CDATA[batch_job_result]]></Event><BatchJob><JobId><![CDATA[jobid_1]]></JobId>"
  .. "<JobType><![CDATA[import_chain_contact]]></JobType><ErrCode>0</ErrCode><ErrMsg><![CDATA[ok]]></ErrMsg>"
  .. "</BatchJob></xml>"

local function envelope(encrypt)
  return "<xml><ToUserName><![CDATA[" .. V1_RID .. "]]></ToUserName>\n<Encrypt><![CDATA["
    .. encrypt .. "]]></Encrypt>\n<AgentID><![CDATA[218]]></AgentID>\n</xml>"
end

local function write(harness, name, bytes)
  local path = dir .. "/" .. harness .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

os.execute("mkdir -p " .. dir .. "/fuzz_xml " .. dir .. "/fuzz_callback_open "
  .. dir .. "/fuzz_base64 " .. dir .. "/fuzz_redis_reader")

-- fuzz_xml: documents, as is
local xml = {
  v1 = V1_PLAIN,
  batch_job = BATCH_JOB,
  envelope = envelope(V1_ENCRYPT),
  declaration = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<xml><A>1</A></xml>\n',
  repeated = "<xml><Item><Id>1</Id></Item><Item><Id>2</Id></Item><Item>3</Item><One/></xml>",
  mixed = "<r>a<![CDATA[<b>&]]>c<![CDATA[]]]]><![CDATA[>]]>\t\n</r>",
  parent_text = "<r>text<c>x</c>more<c/><d></d></r>",
  utf8 = "<r><n>\xe4\xbc\x81\xe4\xb8\x9a\xe5\xbe\xae\xe4\xbf\xa1 \xf0\x9f\x98\x80 \xc2\xa9</n></r>",
  entities = "<r a='1'><e>&lt;&amp;&#x41;&#66;</e><!-- c --><?pi x?></r>",
  crlf = "<r>\r\n<a>1\r2</a>\r\n</r>",
  deep = string.rep("<a>", 33) .. "x" .. string.rep("</a>", 33),
  doctype = '<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>',
}
for name, s in pairs(xml) do
  write("fuzz_xml", name, s)
end

-- fuzz_callback_open: mode byte, then fields separated by 0xff
local c = assert(core.crypter(V1_TOKEN, V1_KEY))
local ts, nonce = "1409659813", "1372623149"
local function signed(body, encrypt)
  return c:signature(ts, nonce, encrypt), body
end
local sig, body = signed(envelope(V1_ENCRYPT), V1_ENCRYPT)
write("fuzz_callback_open", "raw_v1", "\0" .. sig .. SEP .. ts .. SEP .. nonce .. SEP .. body)
write("fuzz_callback_open", "raw_bad_sig", "\0" .. string.rep("0", 40) .. SEP .. ts .. SEP .. nonce .. SEP .. body)
write("fuzz_callback_open", "signed_v1", "\1" .. ts .. SEP .. nonce .. SEP .. body)
local batch = c:encrypt(BATCH_JOB, "wwCORP", "0123456789abcdef")
write("fuzz_callback_open", "signed_batch", "\1" .. ts .. SEP .. nonce .. SEP .. envelope(batch))
write("fuzz_callback_open", "signed_two_encrypt", "\1" .. ts .. SEP .. nonce .. SEP
  .. "<xml><Encrypt>" .. batch .. "</Encrypt><Encrypt>x</Encrypt></xml>")
write("fuzz_callback_open", "cipher_v1", "\2" .. core.base64_decode(V1_ENCRYPT))
write("fuzz_callback_open", "cipher_echo", "\2" .. core.base64_decode(V1_ECHO))
write("fuzz_callback_open", "plain_v1", "\3" .. V1_PLAIN .. SEP .. V1_RID)
write("fuzz_callback_open", "plain_batch", "\3" .. BATCH_JOB .. SEP .. "wwCORP")
write("fuzz_callback_open", "plain_text", "\3" .. "1616140317555161061" .. SEP .. V1_RID)
write("fuzz_callback_open", "plain_bad_xml", "\3" .. "<xml><a></xml>" .. SEP .. "")

-- fuzz_base64: text to decode (and bytes to encode)
write("fuzz_base64", "v1_encrypt", V1_ENCRYPT)
write("fuzz_base64", "v1_echo", V1_ECHO)
write("fuzz_base64", "aes_key", V1_KEY .. "=")
write("fuzz_base64", "pad1", "QUJDRA==")
write("fuzz_base64", "pad2", "QUJDREU=")
write("fuzz_base64", "bad_pad", "QU=DREU=")
write("fuzz_base64", "binary", "\0\1\2\253\254\255")

-- fuzz_redis_reader: even first byte = server bytes, odd = command arguments
write("fuzz_redis_reader", "simple", "\0+OK\r\n:42\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n-ERR bad\r\n")
write("fuzz_redis_reader", "nested", "\2*3\r\n*2\r\n$1\r\na\r\n$-1\r\n-WRONGTYPE x\r\n*1\r\n*1\r\n:7\r\n")
write("fuzz_redis_reader", "exec", "\4*2\r\n+OK\r\n:1\r\n+QUEUED\r\n")
write("fuzz_redis_reader", "bad_type", "\6+OK\r\n?what\r\n")
write("fuzz_redis_reader", "format", "\1" .. table.concat({ "SET", "wecom:token:ww", "tok\0en", "EX", "7200" }, SEP))
write("fuzz_redis_reader", "format_eval",
  "\3" .. table.concat({ "EVAL", "return redis.call('get', KEYS[1])", "1", "k" }, SEP))
