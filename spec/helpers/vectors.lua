-- Published test vectors, written once for every spec that needs them
-- (reference §6 and §7.7).  Values are copied from the sources, never
-- computed here: a spec compares what the code produces with them.
--
--   local vectors = require "helpers.vectors"
--   local V1, V3, JSAPI = vectors.V1, vectors.V3, vectors.JSAPI
--
-- A WXBizMsgCrypt vector:
--   token, aes_key, receive_id        the callback settings
--   verify = { msg_signature, timestamp, nonce, echostr }
--                                     the GET URL check's query
--   echo                              what verify.echostr decrypts to
--   post = { msg_signature, timestamp, nonce }
--                                     the POST's query
--   encrypt                           the POST body's <Encrypt>
--   plaintext                         what encrypt decrypts to
--   reply (V3 only) = { plaintext, random16, timestamp, nonce, encrypt,
--                       msg_signature, xml }
--                                     a passive reply encrypted with random16
--                                     fixed, and the whole reply XML

local _M = {}

-- V1: the official Tencent sample (Sample.cpp of weworkapi_cplusplus)
_M.V1 = {
  token = "QDG6eK",
  aes_key = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
  receive_id = "wx5823bf96d3bd56c7",
  verify = {
    msg_signature = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    timestamp = "1409659589",
    nonce = "263014780",
    echostr = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
  },
  -- verify.echostr as the sample's GET request carries it
  echostr_encoded = "P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO"
    .. "%2BFZXvnaqQ%3D%3D",
  echo = "1616140317555161061",
  post = {
    msg_signature = "477715d11cdb4164915debcba66cb864d751f3e6",
    timestamp = "1409659813",
    nonce = "1372623149",
  },
  encrypt = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdC"
    .. "Upj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06"
    .. "DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH0"
    .. "3v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpN"
    .. "elZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==",
  plaintext = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n"
    .. "<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n"
    .. "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n"
    .. "<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>",
}

-- V3: wechatpy's tests (wechatpy.work.crypto), with a deterministic
-- encryption of a reply
local V3_REPLY_ENCRYPT = "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4"
  .. "HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbC"
  .. "FM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXs"
  .. "VbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD"
  .. "3WeK2XeFYFMNMpatF9XiKzHo3"

_M.V3 = {
  token = "123456",
  aes_key = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
  receive_id = "wx49f0ab532d5d035a",
  -- nonce 437374424 must fail with -40001
  verify = {
    msg_signature = "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
    timestamp = "1411443780",
    nonce = "437374425",
    echostr = "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q==",
  },
  echo = "5927782489442352469",
  post = {
    msg_signature = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
    timestamp = "1411525903",
    nonce = "461056294",
  },
  -- padding of 1 byte
  encrypt = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTy"
    .. "eDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBu"
    .. "g/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3"
    .. "So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6"
    .. "En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=",
  plaintext = "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n"
    .. "<FromUserName><![CDATA[messense]]></FromUserName>\n<CreateTime>1411525903</CreateTime>\n"
    .. "<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
    .. "<MsgId>4363689963896700987</MsgId>\n<AgentID>1</AgentID>\n</xml>",
  reply = {
    plaintext = "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n"
      .. "<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n"
      .. "<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n"
      .. "<CreateTime>1411525903</CreateTime>\n</xml>",
    random16 = "1234567890123456",
    timestamp = "1411525903",
    nonce = "461056294",
    encrypt = V3_REPLY_ENCRYPT,
    msg_signature = "407518b7649e86ef23978113f92d27afa9296533",
    -- exact: LF line ends, no trailing LF
    xml = "<xml>\n<Encrypt><![CDATA[" .. V3_REPLY_ENCRYPT .. "]]></Encrypt>\n"
      .. "<MsgSignature><![CDATA[407518b7649e86ef23978113f92d27afa9296533]]></MsgSignature>\n"
      .. "<TimeStamp>1411525903</TimeStamp>\n<Nonce><![CDATA[461056294]]></Nonce>\n</xml>",
  },
}

-- JS-SDK signature (reference §6): WeCom doc 96909 with a query in the url,
-- the WeChat MP JS-SDK doc without one.
_M.JSAPI = {
  ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
  noncestr = "Wm3WZYTPz0wzccnW",
  timestamp = 1414587457,
  url = "http://mp.weixin.qq.com?params=value",
  signature = "0f9de62fce790f9a083d5c99e95740ceb90c27ed",
  bare_url = "http://mp.weixin.qq.com",
  bare_signature = "f4d90daf4b3bca3078ab155816175ba34c443a7b",
}

return _M
