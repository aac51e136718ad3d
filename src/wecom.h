/*
 * wecom.h - internal interface between the parts of the wecom.core module.
 *
 * The core is one Lua module built from several translation units; only
 * luaopen_wecom_core is exported (everything else has hidden visibility).
 * Each part registers its functions into the module table that sits on the
 * top of the stack when its *_open function is called.
 */
#ifndef WECOM_H
#define WECOM_H

#include <stddef.h>

#include "compat.h"

/* Everything but luaopen_wecom_core stays private to the shared object,
 * also when LuaRocks builds without -fvisibility=hidden. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define WECOM_CORE_VERSION "0.1.0"

/* Default limits, overridable per call. */
#define WECOM_MAX_BODY   (1024 * 1024)   /* 1 MiB: callback bodies and XML */
#define WECOM_MAX_DEPTH  32              /* XML element nesting */

/* WXBizMsgCrypt error codes (reference 7.6). */
enum {
    WECOM_OK                     = 0,
    WECOM_VALIDATE_SIGNATURE     = -40001,
    WECOM_PARSE_XML              = -40002,
    WECOM_COMPUTE_SIGNATURE      = -40003,
    WECOM_ILLEGAL_AES_KEY        = -40004,
    WECOM_VALIDATE_CORPID        = -40005,
    WECOM_ENCRYPT_AES            = -40006,
    WECOM_DECRYPT_AES            = -40007,
    WECOM_ILLEGAL_BUFFER         = -40008,
    WECOM_ENCODE_BASE64          = -40009,
    WECOM_DECODE_BASE64          = -40010,
    WECOM_GEN_RETURN_XML         = -40011
};

/* crypto.c, for core.callback_open in xml.c: the open crypter at idx (or a
 * raised error), and c:open on strings held in C; pushes msg, receive_id
 * (returns 2) or nil, code, message (returns 3). */
struct crypter;
struct crypter *wecom_crypter_check(lua_State *L, int idx);
int wecom_crypter_open(lua_State *L, struct crypter *c, const char *sig, size_t sig_len,
                       const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                       const char *enc, size_t enc_len);

/* Registration hooks, one per part; module table on top of the stack. */
void wecom_crypto_open(lua_State *L);
void wecom_xml_open(lua_State *L);
void wecom_http_open(lua_State *L);
void wecom_token_open(lua_State *L);
void wecom_redis_open(lua_State *L);
void wecom_flock_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* WECOM_H */
