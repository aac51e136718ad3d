rockspec_format = "3.0"
package = "wecom"
version = "dev-1"
source = {
   -- PLACEHOLDER: the published repository goes here (a dev rock builds from
   -- its HEAD; `luarocks pack wecom-dev-1.rockspec` clones it). Until then
   -- `make rock` packs a source rock from a checkout.
   url = "git+https://example.com/wecom.git",
}
description = {
   summary = "WeCom (企业微信) cross-corporation SDK: 上下游, 企业互联, corpgroup",
   detailed = [[
A C core (libcurl, OpenSSL, expat) with a thin Lua layer for WeCom's
upstream/downstream chains, linked corps and shared apps; callbacks, token
stores, OpenResty integration, a local WeCom emulator with a test kit for your
specs (wecom.testing) and a command line (wecom).]],
   homepage = "https://example.com/wecom",   -- PLACEHOLDER, as source.url
   license = "MIT",
   labels = { "wecom", "openresty", "sdk" },
}
-- Lua 5.2-5.4 and LuaJIT. LuaJIT reports itself as Lua 5.1 and LuaRocks has
-- no way to say "5.1 but only LuaJIT", so the range starts at 5.1 and the
-- build refuses PUC-Rio Lua 5.1 (its coroutines cannot yield across pcall,
-- which wecom.parallel needs).
dependencies = {
   "lua >= 5.1, < 5.5",
   "lua-cjson",
}
-- curl's header is not named: Debian and Ubuntu install curl/curl.h under
-- /usr/include/<multiarch>/, where LuaRocks 3.8 does not look, so naming it
-- would fail there; the compiler finds it.
external_dependencies = {
   CURL = { library = "curl" },
   CRYPTO = { header = "openssl/evp.h", library = "crypto" },
   EXPAT = { header = "expat.h", library = "expat" },
   HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
   -- One compiler call builds the core straight into the rock's lib
   -- directory: no object file or library is left in the source tree (the
   -- builtin backend writes src/*.o and wecom/core.so next to the sources).
   type = "command",
   build_command = [=[
      if grep -q "LUA_VERSION_NUM[[:space:]]*501" "$(LUA_INCDIR)/lua.h" && ! test -f "$(LUA_INCDIR)/luajit.h"; then
         echo "wecom: PUC-Rio Lua 5.1 is not supported; build for LuaJIT (LUA_INCDIR=/usr/include/luajit-2.1, see README) or Lua 5.2-5.4" >&2
         exit 1
      fi
      mkdir -p "$(LIBDIR)/wecom" &&
      $(CC) $(CFLAGS) -std=c99 -D_GNU_SOURCE -fvisibility=hidden -I"$(LUA_INCDIR)" -Isrc \
         -I"$(CRYPTO_INCDIR)" -I"$(EXPAT_INCDIR)" -I"$(HIREDIS_INCDIR)" \
         src/core.c src/crypto.c src/flock.c src/http.c src/redis.c src/token.c src/util.c src/xml.c src/xml_scan.c \
         $(LIBFLAG) -o "$(LIBDIR)/wecom/core.$(LIB_EXTENSION)" \
         -L"$(CURL_LIBDIR)" -L"$(CRYPTO_LIBDIR)" -L"$(EXPAT_LIBDIR)" -L"$(HIREDIS_LIBDIR)" \
         -lcurl -lcrypto -lexpat -lhiredis -lpthread
   ]=],
   install = {
      -- a package's init.lua is named <package>.init, so it installs as
      -- <package>/init.lua (as the builtin backend would place it)
      lua = {
         ["wecom.api.chain"] = "lua/wecom/api/chain.lua",
         ["wecom.api.idconvert"] = "lua/wecom/api/idconvert.lua",
         ["wecom.api.identity"] = "lua/wecom/api/identity.lua",
         ["wecom.api.identity3rd"] = "lua/wecom/api/identity3rd.lua",
         ["wecom.api.jsapi"] = "lua/wecom/api/jsapi.lua",
         ["wecom.api.linkedcorp"] = "lua/wecom/api/linkedcorp.lua",
         ["wecom.api.service"] = "lua/wecom/api/service.lua",
         ["wecom.api.share"] = "lua/wecom/api/share.lua",
         ["wecom.budget"] = "lua/wecom/budget.lua",
         ["wecom.callback"] = "lua/wecom/callback.lua",
         ["wecom.cli.args"] = "lua/wecom/cli/args.lua",
         ["wecom.cli.callback"] = "lua/wecom/cli/callback.lua",
         ["wecom.cli.chain"] = "lua/wecom/cli/chain.lua",
         ["wecom.cli.config"] = "lua/wecom/cli/config.lua",
         ["wecom.cli.csv"] = "lua/wecom/cli/csv.lua",
         ["wecom.cli.init"] = "lua/wecom/cli/init.lua",
         ["wecom.cli.linkedcorp"] = "lua/wecom/cli/linkedcorp.lua",
         ["wecom.cli.output"] = "lua/wecom/cli/output.lua",
         ["wecom.cli.provider"] = "lua/wecom/cli/provider.lua",
         ["wecom.cli.share"] = "lua/wecom/cli/share.lua",
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
         ["wecom.emulator.ffi_core"] = "lua/wecom/emulator/ffi_core.lua",
         ["wecom.emulator.fixture"] = "lua/wecom/emulator/fixture.lua",
         ["wecom.emulator.init"] = "lua/wecom/emulator/init.lua",
         ["wecom.emulator.provider"] = "lua/wecom/emulator/provider.lua",
         ["wecom.emulator.provider_control"] = "lua/wecom/emulator/provider_control.lua",
         ["wecom.emulator.push"] = "lua/wecom/emulator/push.lua",
         ["wecom.emulator.server"] = "lua/wecom/emulator/server.lua",
         ["wecom.emulator.store"] = "lua/wecom/emulator/store.lua",
         ["wecom.emulator.tokens"] = "lua/wecom/emulator/tokens.lua",
         ["wecom.emulator.web"] = "lua/wecom/emulator/web.lua",
         ["wecom.env"] = "lua/wecom/env.lua",
         ["wecom.errors"] = "lua/wecom/errors.lua",
         ["wecom.events"] = "lua/wecom/events.lua",
         ["wecom.init"] = "lua/wecom/init.lua",
         ["wecom.json"] = "lua/wecom/json.lua",
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
         ["wecom.shell"] = "lua/wecom/shell.lua",
         ["wecom.store.common"] = "lua/wecom/store/common.lua",
         ["wecom.suite"] = "lua/wecom/suite.lua",
         ["wecom.suite.events"] = "lua/wecom/suite/events.lua",
         ["wecom.suite.records"] = "lua/wecom/suite/records.lua",
         ["wecom.store.file"] = "lua/wecom/store/file.lua",
         ["wecom.store.memory"] = "lua/wecom/store/memory.lua",
         ["wecom.store.redis"] = "lua/wecom/store/redis.lua",
         ["wecom.store.shdict"] = "lua/wecom/store/shdict.lua",
         ["wecom.testing"] = "lua/wecom/testing.lua",
         ["wecom.token"] = "lua/wecom/token.lua",
         ["wecom.transport.curl"] = "lua/wecom/transport/curl.lua",
         ["wecom.transport.http1"] = "lua/wecom/transport/http1.lua",
         ["wecom.transport.init"] = "lua/wecom/transport/init.lua",
         ["wecom.transport.ngx"] = "lua/wecom/transport/ngx.lua",
         ["wecom.url"] = "lua/wecom/url.lua",
         ["wecom.version"] = "lua/wecom/version.lua",
      },
      bin = { "bin/wecom-emulator", "bin/wecom" },
   },
   copy_directories = { "examples" },
}
-- bin/wecom and bin/wecom-emulator choose the interpreter of the tree they are
-- installed in themselves (LuaJIT for a 5.1 tree, never PUC-Rio lua5.1), so
-- LuaRocks copies them as they are instead of wrapping them.
deploy = {
   wrap_bin_scripts = false,
}
test = {
   type = "busted",
}
