rockspec_format = "3.0"
package = "wecom"
version = "dev-1"
source = {
   url = "git+file:///dev/null",
}
description = {
   summary = "WeCom (企业微信) cross-corporation SDK: 上下游, 企业互联, corpgroup",
   detailed = [[
A C core (libcurl, OpenSSL, expat) with a thin Lua layer for WeCom's
upstream/downstream chains, linked corps and shared apps; callbacks, token
stores, OpenResty integration and a local WeCom emulator.]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.1, < 5.5",
   "lua-cjson",
}
external_dependencies = {
   CURL = { library = "curl" },
   CRYPTO = { library = "crypto" },
   EXPAT = { header = "expat.h", library = "expat" },
   HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
   type = "builtin",
   modules = {
      ["wecom.core"] = {
         sources = { "src/core.c", "src/util.c", "src/crypto.c", "src/xml.c", "src/xml_scan.c",
            "src/http.c", "src/token.c", "src/redis.c", "src/flock.c" },
         libraries = { "curl", "crypto", "expat", "hiredis", "pthread" },
         incdirs = { "src", "$(EXPAT_INCDIR)", "$(HIREDIS_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(CRYPTO_LIBDIR)", "$(EXPAT_LIBDIR)", "$(HIREDIS_LIBDIR)" },
         defines = { "_GNU_SOURCE" },
      },
      ["wecom.api.chain"] = "lua/wecom/api/chain.lua",
      ["wecom.api.identity"] = "lua/wecom/api/identity.lua",
      ["wecom.api.idconvert"] = "lua/wecom/api/idconvert.lua",
      ["wecom.api.identity3rd"] = "lua/wecom/api/identity3rd.lua",
      ["wecom.api.jsapi"] = "lua/wecom/api/jsapi.lua",
      ["wecom.api.linkedcorp"] = "lua/wecom/api/linkedcorp.lua",
      ["wecom.api.service"] = "lua/wecom/api/service.lua",
      ["wecom.api.share"] = "lua/wecom/api/share.lua",
      ["wecom.budget"] = "lua/wecom/budget.lua",
      ["wecom.callback"] = "lua/wecom/callback.lua",
      ["wecom.client"] = "lua/wecom/client.lua",
      ["wecom.emulator.api.base"] = "lua/wecom/emulator/api/base.lua",
      ["wecom.emulator.api.chain"] = "lua/wecom/emulator/api/chain.lua",
      ["wecom.emulator.api.idconvert"] = "lua/wecom/emulator/api/idconvert.lua",
      ["wecom.emulator.api.linkedcorp"] = "lua/wecom/emulator/api/linkedcorp.lua",
      ["wecom.emulator.api.service"] = "lua/wecom/emulator/api/service.lua",
      ["wecom.emulator.api.share"] = "lua/wecom/emulator/api/share.lua",
      ["wecom.emulator.conf"] = "lua/wecom/emulator/conf.lua",
      ["wecom.emulator.control"] = "lua/wecom/emulator/control.lua",
      ["wecom.emulator.default_fixture"] = "lua/wecom/emulator/default_fixture.lua",
      ["wecom.emulator.faults"] = "lua/wecom/emulator/faults.lua",
      ["wecom.emulator.fixture"] = "lua/wecom/emulator/fixture.lua",
      ["wecom.emulator"] = "lua/wecom/emulator/init.lua",
      ["wecom.emulator.provider"] = "lua/wecom/emulator/provider.lua",
      ["wecom.emulator.provider_control"] = "lua/wecom/emulator/provider_control.lua",
      ["wecom.emulator.push"] = "lua/wecom/emulator/push.lua",
      ["wecom.emulator.server"] = "lua/wecom/emulator/server.lua",
      ["wecom.emulator.store"] = "lua/wecom/emulator/store.lua",
      ["wecom.emulator.tokens"] = "lua/wecom/emulator/tokens.lua",
      ["wecom.emulator.web"] = "lua/wecom/emulator/web.lua",
      ["wecom.errors"] = "lua/wecom/errors.lua",
      ["wecom.events"] = "lua/wecom/events.lua",
      ["wecom"] = "lua/wecom/init.lua",
      ["wecom.json"] = "lua/wecom/json.lua",
      ["wecom.url"] = "lua/wecom/url.lua",
      ["wecom.env"] = "lua/wecom/env.lua",
      ["wecom.version"] = "lua/wecom/version.lua",
      ["wecom.ngx"] = "lua/wecom/ngx.lua",
      ["wecom.ngx.parallel"] = "lua/wecom/ngx/parallel.lua",
      ["wecom.ngx.suite"] = "lua/wecom/ngx/suite.lua",
      ["wecom.options"] = "lua/wecom/options.lua",
      ["wecom.pager"] = "lua/wecom/pager.lua",
      ["wecom.provider"] = "lua/wecom/provider.lua",
      ["wecom.parallel"] = "lua/wecom/parallel.lua",
      ["wecom.response"] = "lua/wecom/response.lua",
      ["wecom.retry"] = "lua/wecom/retry.lua",
      ["wecom.scrub"] = "lua/wecom/scrub.lua",
      ["wecom.suite"] = "lua/wecom/suite.lua",
      ["wecom.suite.events"] = "lua/wecom/suite/events.lua",
      ["wecom.suite.records"] = "lua/wecom/suite/records.lua",
      ["wecom.store.common"] = "lua/wecom/store/common.lua",
      ["wecom.store.file"] = "lua/wecom/store/file.lua",
      ["wecom.store.memory"] = "lua/wecom/store/memory.lua",
      ["wecom.store.redis"] = "lua/wecom/store/redis.lua",
      ["wecom.store.shdict"] = "lua/wecom/store/shdict.lua",
      ["wecom.token"] = "lua/wecom/token.lua",
      ["wecom.transport.curl"] = "lua/wecom/transport/curl.lua",
      ["wecom.transport"] = "lua/wecom/transport/init.lua",
      ["wecom.transport.ngx"] = "lua/wecom/transport/ngx.lua",
      ["wecom.transport.http1"] = "lua/wecom/transport/http1.lua",
   },
   install = {
      bin = { "bin/wecom-emulator" },
   },
   copy_directories = { "examples" },
}
test = {
   type = "busted",
}
