/*
 * core.c - luaopen_wecom_core: assembles the module from its parts.
 *
 * Parts: crypto.c (WXBizMsgCrypt, JSAPI signature, base64, CSPRNG, and
 * callback_open: verify + decrypt + parse in one call), xml.c (expat glue,
 * xml_decode, the tree into Lua tables) with xml_scan.c (the fast scanner
 * for WeCom's plain XML) and xml.h (the tree they share), http.c (libcurl
 * sessions, easy + multi), token.c (the process-wide token cache, clocks),
 * redis.c (hiredis: a blocking connection, and the RESP formatter/reader
 * for cosockets), flock.c (file locks and files for the file token store),
 * util.c (the failure convention, argument readers, class registration;
 * see wecom.h).
 */
#include "wecom.h"

#if defined(__GNUC__)
#define WECOM_EXPORT __attribute__((visibility("default")))
#else
#define WECOM_EXPORT
#endif

WECOM_EXPORT int luaopen_wecom_core(lua_State *L);

WECOM_EXPORT int luaopen_wecom_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, WECOM_CORE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, "wecom.core");
    lua_setfield(L, -2, "_NAME");

    wecom_crypto_open(L);
    wecom_xml_open(L);
    wecom_http_open(L);
    wecom_token_open(L);
    wecom_redis_open(L);
    wecom_flock_open(L);
    return 1;
}
