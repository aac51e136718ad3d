/*
 * crypto.c - WXBizMsgCrypt (callback signature, AES-256-CBC framing),
 * the JSAPI signature, base64, a CSPRNG and a constant-time compare.
 *
 * Caveats:
 * - OpenSSL is only used through EVP.  No Lua API call that can raise is
 *   made while an OpenSSL operation is half done: results are computed
 *   into C buffers first, then pushed.
 * - Scratch buffers live on the C stack for the usual message sizes and in
 *   a Lua userdata beyond that, so a memory error can never leak them and a
 *   finalizer that re-enters the crypter cannot clobber them.
 * - The crypter keeps its own copy of the token and key and wipes both with
 *   OPENSSL_cleanse when destroyed; neither ever reaches an error string or
 *   tostring().
 * - core.callback_open (at the end) is wecom.callback's decrypt of an XML
 *   envelope in one call: envelope tree (xml.h), the Encrypt text straight
 *   into verify + decrypt without becoming a Lua string, plaintext tree,
 *   event table.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "wecom.h"
#include "xml.h"

#define CRYPTER_MT      "wecom.core.crypter"
#define METHOD(name)    CRYPTER_MT ":" name
#define AES_KEY_LEN     32
#define AES_IV_LEN      16
#define AES_BLOCK       16
#define PAD_BLOCK       32      /* WXBizMsgCrypt pads to 32 bytes, not 16 */
#define RANDOM_LEN      16
#define FRAME_HEAD      (RANDOM_LEN + 4)
#define SHA1_LEN        20
#define SHA1_HEX_LEN    40
#define STACK_SCRATCH   8192    /* covers every ordinary callback body */
#define MAX_RANDOM      (1024 * 1024)
#define MAX_NONCE       1024

/* ===== base64 (standard alphabet, padded) ============================== */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 255 for anything else. */
static const unsigned char b64_value[256] = {
#define X 255
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, 62, X, X, X, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, X, X, X, 64, X, X,
    X, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, X, X, X, X, X,
    X, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
    41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
    X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X
#undef X
};

static size_t b64_encoded_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    char *p = out;
    size_t i = 0;

    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = b64_alphabet[v >> 18];
        *p++ = b64_alphabet[(v >> 12) & 63];
        *p++ = b64_alphabet[(v >> 6) & 63];
        *p++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        *p++ = b64_alphabet[v >> 18];
        *p++ = b64_alphabet[(v >> 12) & 63];
        *p++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    return (size_t)(p - out);
}

/* Upper bound of the decoded size; exact unless the input is invalid. */
static size_t b64_decoded_max(size_t n)
{
    return n / 4 * 3;
}

/*
 * The decoder's main loop looks each character up in one of four tables
 * that hold its six bits already shifted to where they land in the three
 * output bytes (byte k of the output in bits 8k..8k+7), or B64_BAD for
 * anything outside the alphabet ('=' included), so a quantum is four
 * loads and three ORs.  The tables are constant expressions of the byte.
 */
#define B64V(c)                                                               \
    ((c) >= 'A' && (c) <= 'Z' ? (c) - 'A' : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26     \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52 : (c) == '+' ? 62 : (c) == '/' ? 63 : 64)
#define B64_BAD 0x01000000u
#define B64_D0(c) (B64V(c) < 64 ? (uint32_t)B64V(c) << 2 : B64_BAD)
#define B64_D1(c) (B64V(c) < 64 ? (uint32_t)B64V(c) >> 4 | ((uint32_t)B64V(c) & 15) << 12 : B64_BAD)
#define B64_D2(c) (B64V(c) < 64 ? ((uint32_t)B64V(c) >> 2) << 8 | ((uint32_t)B64V(c) & 3) << 22 : B64_BAD)
#define B64_D3(c) (B64V(c) < 64 ? (uint32_t)B64V(c) << 16 : B64_BAD)
#define B64_R4(M, i)   M(i), M(i + 1), M(i + 2), M(i + 3)
#define B64_R16(M, i)  B64_R4(M, i), B64_R4(M, i + 4), B64_R4(M, i + 8), B64_R4(M, i + 12)
#define B64_R64(M, i)  B64_R16(M, i), B64_R16(M, i + 16), B64_R16(M, i + 32), B64_R16(M, i + 48)
#define B64_R256(M)    B64_R64(M, 0), B64_R64(M, 64), B64_R64(M, 128), B64_R64(M, 192)

static const uint32_t b64_d0[256] = { B64_R256(B64_D0) };
static const uint32_t b64_d1[256] = { B64_R256(B64_D1) };
static const uint32_t b64_d2[256] = { B64_R256(B64_D2) };
static const uint32_t b64_d3[256] = { B64_R256(B64_D3) };

/*
 * Strict decoder: length a multiple of 4, '=' only as the last one or two
 * characters, nothing outside the alphabet.  Returns the decoded length or
 * (size_t)-1.  The unused low bits of the last quantum are not checked:
 * EncodingAESKey + "=" relies on that.
 */
static size_t b64_decode(const char *in, size_t n, unsigned char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    unsigned char *p = out;
    size_t i, full;

    if (n % 4 != 0)
        return (size_t)-1;
    if (n == 0)
        return 0;
    full = n - 4;   /* the last quantum may carry padding */
    {
        /* One check at the end instead of a branch per quantum. */
        uint32_t bad = 0;
        for (i = 0; i < full; i += 4) {
            uint32_t v = b64_d0[s[i]] | b64_d1[s[i + 1]] | b64_d2[s[i + 2]] | b64_d3[s[i + 3]];
            bad |= v;
            p[0] = (unsigned char)v;
            p[1] = (unsigned char)(v >> 8);
            p[2] = (unsigned char)(v >> 16);
            p += 3;
        }
        if (bad & B64_BAD)
            return (size_t)-1;
    }
    {
        unsigned a = b64_value[s[i]], b = b64_value[s[i + 1]],
                 c = b64_value[s[i + 2]], d = b64_value[s[i + 3]];
        if (a >= 64 || b >= 64 || c > 64 || d > 64 || (c == 64 && d != 64))
            return (size_t)-1;
        *p++ = (unsigned char)(a << 2 | b >> 4);
        if (c != 64) {
            *p++ = (unsigned char)(b << 4 | c >> 2);
            if (d != 64)
                *p++ = (unsigned char)(c << 6 | d);
        }
    }
    return (size_t)(p - out);
}

/* ===== helpers ========================================================= */

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

/* A scratch area of n bytes: the caller's stack buffer when it is big
 * enough, otherwise a userdata left on the Lua stack (GC-owned). */
static unsigned char *scratch(lua_State *L, unsigned char *stack_buf, size_t stack_len, size_t n)
{
    if (n <= stack_len)
        return stack_buf;
    return (unsigned char *)lua_newuserdata(L, n);
}

/* Length check first so a mismatch says nothing about the content. */
static int const_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    return alen == 0 || CRYPTO_memcmp(a, b, alen) == 0;
}

/* ===== SHA-1 =========================================================== */

/* One-shot SHA-1 over several pieces.  Returns 1 on success. */
static int sha1_pieces(EVP_MD_CTX *ctx, const EVP_MD *md, const char *const *piece,
                       const size_t *len, int count, unsigned char digest[SHA1_LEN])
{
    unsigned int dlen = 0;
    int i;

    if (EVP_DigestInit_ex(ctx, md, NULL) != 1)
        return 0;
    for (i = 0; i < count; i++)
        if (len[i] > 0 && EVP_DigestUpdate(ctx, piece[i], len[i]) != 1)
            return 0;
    return EVP_DigestFinal_ex(ctx, digest, &dlen) == 1 && dlen == SHA1_LEN;
}

/* Module-level (non hot path) SHA-1 hex with a temporary context. */
static int sha1_hex_pieces(const char *const *piece, const size_t *len, int count,
                           char hex[SHA1_HEX_LEN])
{
    unsigned char digest[SHA1_LEN];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok;

    if (ctx == NULL)
        return 0;
    ok = sha1_pieces(ctx, EVP_sha1(), piece, len, count, digest);
    EVP_MD_CTX_free(ctx);
    if (ok)
        hex_lower(digest, SHA1_LEN, hex);
    return ok;
}

static int l_sha1_hex(lua_State *L)
{
    size_t len;
    const char *s = wecom_check_string(L, 1, WECOM_FN("sha1_hex"), "s", &len);
    char hex[SHA1_HEX_LEN];

    if (!sha1_hex_pieces(&s, &len, 1, hex))
        return luaL_error(L, WECOM_FN("sha1_hex") ": OpenSSL digest failed");
    lua_pushlstring(L, hex, SHA1_HEX_LEN);
    return 1;
}

/*
 * jsapi_signature(ticket, noncestr, timestamp, url): sha1 over
 * "jsapi_ticket=..&noncestr=..&timestamp=..&url=.." with the url cut at '#'.
 */
static int l_jsapi_signature(lua_State *L)
{
    const char *piece[8];
    size_t len[8];
    char tsbuf[32];
    char hex[SHA1_HEX_LEN];
    const char *hash;

#define WHERE WECOM_FN("jsapi_signature")
    piece[0] = "jsapi_ticket=";
    len[0] = 13;
    piece[1] = wecom_check_string(L, 1, WHERE, "ticket", &len[1]);
    piece[2] = "&noncestr=";
    len[2] = 10;
    piece[3] = wecom_check_string(L, 2, WHERE, "noncestr", &len[3]);
    piece[4] = "&timestamp=";
    len[4] = 11;
    if (lua_type(L, 3) == LUA_TNUMBER) {
        /* Render numbers as integers: 5.4 would print 1414587457.0. */
        lua_Integer n = wecom_check_integer(L, 3, WHERE, "timestamp", 0, (lua_Integer)1 << 53);
        len[5] = (size_t)snprintf(tsbuf, sizeof tsbuf, "%lld", (long long)n);
        piece[5] = tsbuf;
    } else {
        piece[5] = wecom_check_string(L, 3, WHERE, "timestamp", &len[5]);
    }
    piece[6] = "&url=";
    len[6] = 5;
    piece[7] = wecom_check_string(L, 4, WHERE, "url", &len[7]);
    hash = memchr(piece[7], '#', len[7]);
    if (hash != NULL)
        len[7] = (size_t)(hash - piece[7]);

    if (!sha1_hex_pieces(piece, len, 8, hex))
        return luaL_error(L, WHERE ": OpenSSL digest failed");
#undef WHERE
    lua_pushlstring(L, hex, SHA1_HEX_LEN);
    return 1;
}

/* ===== base64, random, compare ========================================= */

static int l_base64_encode(lua_State *L)
{
    unsigned char stack_buf[STACK_SCRATCH];
    size_t n, out_len;
    const char *s = wecom_check_string(L, 1, WECOM_FN("base64_encode"), "s", &n);
    char *out;

    out_len = b64_encoded_len(n);
    out = (char *)scratch(L, stack_buf, sizeof stack_buf, out_len);
    out_len = b64_encode((const unsigned char *)s, n, out);
    lua_pushlstring(L, out, out_len);
    return 1;
}

static int l_base64_decode(lua_State *L)
{
    unsigned char stack_buf[STACK_SCRATCH];
    size_t n, out_len;
    const char *s = wecom_check_string(L, 1, WECOM_FN("base64_decode"), "s", &n);
    unsigned char *out = scratch(L, stack_buf, sizeof stack_buf, b64_decoded_max(n));

    out_len = b64_decode(s, n, out);
    if (out_len == (size_t)-1)
        return wecom_fail(L, "invalid base64", NULL);
    lua_pushlstring(L, (const char *)out, out_len);
    return 1;
}

static int l_random_bytes(lua_State *L)
{
    unsigned char stack_buf[256];
    lua_Integer n = wecom_check_integer(L, 1, WECOM_FN("random_bytes"), "n", 0, MAX_RANDOM);
    unsigned char *out = scratch(L, stack_buf, sizeof stack_buf, (size_t)n);

    if (n > 0 && RAND_bytes(out, (int)n) != 1)
        return wecom_fail(L, "random_bytes: the OpenSSL CSPRNG failed", NULL);
    lua_pushlstring(L, (const char *)out, (size_t)n);
    return 1;
}

static const char alnum[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* Fills out[0..n) with uniformly drawn alphanumerics.  Returns 1 on success. */
static int random_alnum(char *out, size_t n)
{
    unsigned char pool[64];
    size_t filled = 0;

    while (filled < n) {
        size_t i;
        if (RAND_bytes(pool, sizeof pool) != 1)
            return 0;
        /* 248 = 4 * 62: rejecting the rest keeps every character equally likely. */
        for (i = 0; i < sizeof pool && filled < n; i++)
            if (pool[i] < 248)
                out[filled++] = alnum[pool[i] % 62];
    }
    OPENSSL_cleanse(pool, sizeof pool);
    return 1;
}

static int l_nonce(lua_State *L)
{
    char out[MAX_NONCE];
    lua_Integer n = lua_isnoneornil(L, 1) ? 16
                    : wecom_check_integer(L, 1, WECOM_FN("nonce"), "n", 1, MAX_NONCE);

    if (!random_alnum(out, (size_t)n))
        return wecom_fail(L, "nonce: the OpenSSL CSPRNG failed", NULL);
    lua_pushlstring(L, out, (size_t)n);
    return 1;
}

static int l_const_eq(lua_State *L)
{
    size_t alen, blen;
    const char *a = wecom_check_string(L, 1, WECOM_FN("const_eq"), "a", &alen);
    const char *b = wecom_check_string(L, 2, WECOM_FN("const_eq"), "b", &blen);

    lua_pushboolean(L, const_equal(a, alen, b, blen));
    return 1;
}

/* ===== crypter ========================================================= */

typedef struct crypter {
    EVP_CIPHER_CTX *dec;        /* key schedule kept; see crypter_decrypt_raw */
    int dec_reset;              /* the next decryption must reset the IV */
    EVP_CIPHER_CTX *enc;
    EVP_MD_CTX *md_ctx;
    EVP_MD *sha1;               /* fetched once (OpenSSL 3) */
    char *token;
    size_t token_len;
    unsigned char key[AES_KEY_LEN];
} crypter;

static void crypter_free(crypter *c)
{
    if (c == NULL)
        return;
    EVP_CIPHER_CTX_free(c->dec);
    EVP_CIPHER_CTX_free(c->enc);
    EVP_MD_CTX_free(c->md_ctx);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(c->sha1);
#endif
    if (c->token != NULL) {
        OPENSSL_cleanse(c->token, c->token_len);
        OPENSSL_free(c->token);
    }
    OPENSSL_cleanse(c->key, sizeof c->key);
    OPENSSL_free(c);
}

static const wecom_class crypter_class;     /* defined with the methods, below */

/* The open crypter at idx, or a raised error naming where. */
static crypter *crypter_check(lua_State *L, int idx, const char *where)
{
    crypter *c = *(crypter **)wecom_check_object(L, idx, &crypter_class, where);
    if (c == NULL)
        wecom_closed(L, where, "crypter");
    return c;
}

/* The single destroy behind close(), __gc and __close. */
static int crypter_destroy(lua_State *L)
{
    crypter **box = wecom_check_object(L, 1, &crypter_class, METHOD("close"));
    crypter_free(*box);
    *box = NULL;
    return 0;
}

static int crypter_tostring(lua_State *L)
{
    crypter **box = wecom_check_object(L, 1, &crypter_class, "tostring");
    char state[32];

    snprintf(state, sizeof state, "%p", (void *)box);
    return wecom_push_tostring(L, CRYPTER_MT, *box == NULL ? "closed" : state);
}

/* Builds the C state; returns NULL on an OpenSSL allocation failure. */
static crypter *crypter_new(const char *token, size_t token_len, const unsigned char key[AES_KEY_LEN])
{
    crypter *c = OPENSSL_zalloc(sizeof *c);

    if (c == NULL)
        return NULL;
    memcpy(c->key, key, AES_KEY_LEN);
    c->token_len = token_len;
    c->token = OPENSSL_malloc(token_len + 1);
    c->dec = EVP_CIPHER_CTX_new();
    c->enc = EVP_CIPHER_CTX_new();
    c->md_ctx = EVP_MD_CTX_new();
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    c->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
#else
    c->sha1 = (EVP_MD *)EVP_sha1();
#endif
    if (c->token == NULL || c->dec == NULL || c->enc == NULL || c->md_ctx == NULL || c->sha1 == NULL)
        goto fail;
    memcpy(c->token, token, token_len);
    c->token[token_len] = '\0';
    /* Padding is ours (block 32), so OpenSSL's must stay off. */
    if (EVP_DecryptInit_ex(c->dec, EVP_aes_256_cbc(), NULL, c->key, c->key) != 1
        || EVP_CIPHER_CTX_set_padding(c->dec, 0) != 1
        || EVP_EncryptInit_ex(c->enc, EVP_aes_256_cbc(), NULL, c->key, c->key) != 1
        || EVP_CIPHER_CTX_set_padding(c->enc, 0) != 1)
        goto fail;
    return c;
fail:
    crypter_free(c);
    return NULL;
}

/* core.crypter(token, encoding_aes_key): a key that is not an
 * EncodingAESKey is the caller's bug (configuration), so it raises; the
 * message gives its length, never its content. */
static int l_crypter(lua_State *L)
{
    size_t token_len, key_len;
    const char *token = wecom_check_string(L, 1, WECOM_FN("crypter"), "token", &token_len);
    const char *aes_key = wecom_check_string(L, 2, WECOM_FN("crypter"), "aes_key", &key_len);
    char padded[44];
    unsigned char key[33];
    crypter **box;
    int valid;

    if (key_len != 43)
        return wecom_usage(L, WECOM_FN("crypter"),
                           "aes_key must be 43 characters of base64 (got %d bytes)",
                           (int)(key_len > INT_MAX ? INT_MAX : key_len));
    memcpy(padded, aes_key, 43);
    padded[43] = '=';
    valid = b64_decode(padded, sizeof padded, key) == AES_KEY_LEN;
    OPENSSL_cleanse(padded, sizeof padded);
    if (!valid) {
        OPENSSL_cleanse(key, sizeof key);
        return wecom_usage(L, WECOM_FN("crypter"),
                           "aes_key must be 43 characters of base64 "
                           "(got a character outside the base64 alphabet)");
    }

    /* Metatable first, so __gc is armed before the C state exists. */
    box = (crypter **)lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, CRYPTER_MT);
    lua_setmetatable(L, -2);
    *box = crypter_new(token, token_len, key);
    OPENSSL_cleanse(key, sizeof key);
    if (*box == NULL)
        return luaL_error(L, WECOM_FN("crypter") ": out of memory in OpenSSL");
    return 1;
}

/* Sorts the four signature inputs bytewise (shorter prefix first). */
static int bytes_less(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    return r < 0 || (r == 0 && alen < blen);
}

static int crypter_sign(crypter *c, const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                        const char *enc, size_t enc_len, char hex[SHA1_HEX_LEN])
{
    const char *piece[4];
    size_t len[4];
    unsigned char digest[SHA1_LEN];
    int i, j;

    piece[0] = c->token; len[0] = c->token_len;
    piece[1] = ts;       len[1] = ts_len;
    piece[2] = nonce;    len[2] = nonce_len;
    piece[3] = enc;      len[3] = enc_len;
    for (i = 1; i < 4; i++) {               /* insertion sort of four */
        const char *p = piece[i];
        size_t l = len[i];
        for (j = i; j > 0 && bytes_less(p, l, piece[j - 1], len[j - 1]); j--) {
            piece[j] = piece[j - 1];
            len[j] = len[j - 1];
        }
        piece[j] = p;
        len[j] = l;
    }
    if (!sha1_pieces(c->md_ctx, c->sha1, piece, len, 4, digest))
        return 0;
    hex_lower(digest, SHA1_LEN, hex);
    return 1;
}

/* Checks msg_signature against (ts, nonce, encrypt).  Returns 1 match,
 * 0 mismatch, -1 digest failure. */
static int crypter_verify_raw(crypter *c, const char *sig, size_t sig_len, const char *ts, size_t ts_len,
                              const char *nonce, size_t nonce_len, const char *enc, size_t enc_len)
{
    char hex[SHA1_HEX_LEN];

    if (!crypter_sign(c, ts, ts_len, nonce, nonce_len, enc, enc_len, hex))
        return -1;
    return const_equal(sig, sig_len, hex, SHA1_HEX_LEN);
}

/* The same for the four strings msg_signature, timestamp, nonce, encrypt
 * from index 2 on. */
static int crypter_verify_args(lua_State *L, crypter *c, const char *where)
{
    size_t sig_len, ts_len, nonce_len, enc_len;
    const char *sig = wecom_check_string(L, 2, where, "msg_signature", &sig_len);
    const char *ts = wecom_check_string(L, 3, where, "timestamp", &ts_len);
    const char *nonce = wecom_check_string(L, 4, where, "nonce", &nonce_len);
    const char *enc = wecom_check_string(L, 5, where, "encrypt", &enc_len);

    return crypter_verify_raw(c, sig, sig_len, ts, ts_len, nonce, nonce_len, enc, enc_len);
}

static int l_crypter_signature(lua_State *L)
{
    crypter *c = crypter_check(L, 1, METHOD("signature"));
    size_t ts_len, nonce_len, enc_len;
    const char *ts = wecom_check_string(L, 2, METHOD("signature"), "timestamp", &ts_len);
    const char *nonce = wecom_check_string(L, 3, METHOD("signature"), "nonce", &nonce_len);
    const char *enc = wecom_check_string(L, 4, METHOD("signature"), "encrypt", &enc_len);
    char hex[SHA1_HEX_LEN];

    if (!crypter_sign(c, ts, ts_len, nonce, nonce_len, enc, enc_len, hex))
        return wecom_fail_code(L, "SHA-1 failed", WECOM_COMPUTE_SIGNATURE);
    lua_pushlstring(L, hex, SHA1_HEX_LEN);
    return 1;
}

static int l_crypter_verify(lua_State *L)
{
    crypter *c = crypter_check(L, 1, METHOD("verify"));
    int r = crypter_verify_args(L, c, METHOD("verify"));

    if (r < 0)
        return wecom_fail_code(L, "SHA-1 failed", WECOM_COMPUTE_SIGNATURE);
    lua_pushboolean(L, r);
    return 1;
}

/* A decrypted message: msg and receive_id, in the caller's buffer. */
typedef struct opened {
    const char *msg, *rid;
    size_t msg_len, rid_len;
} opened;

/*
 * Decodes and decrypts base64 text into buf (room for
 * b64_decoded_max(b64_len) bytes) and finds msg and receive_id in it.  The
 * layout after unpadding is
 * random16 || uint32 big-endian msg length || msg || receive_id.
 * NULL on success, else the failure's message with *code set.
 */
static const char *crypter_decrypt_into(crypter *c, const char *b64, size_t b64_len,
                                        unsigned char *buf, opened *out, int *code)
{
    size_t n, content_len;
    unsigned pad;
    uint32_t msg_len;
    int out_len = 0;

    n = b64_decode(b64, b64_len, buf);
    *code = WECOM_DECODE_BASE64;
    if (n == (size_t)-1)
        return "ciphertext is not valid base64";
    *code = WECOM_DECRYPT_AES;
    if (n == 0 || n % AES_BLOCK != 0)
        return "ciphertext length is not a positive multiple of 16";

    /* The IV only enters the first block, and the first block is random16,
     * which nobody reads: so the context keeps chaining from the previous
     * message instead of being reset for each (a reset costs as much as
     * decrypting a typical event).  It is reset when the first block
     * matters (a one-block ciphertext, whose padding byte lies in it) and
     * after a failure.  The key schedule from crypter_new is always kept.
     * CBC decryption in place is allowed by EVP when in == out exactly. */
    if ((n == AES_BLOCK || c->dec_reset)
        && EVP_DecryptInit_ex(c->dec, NULL, NULL, NULL, c->key) != 1)
        return "AES decryption failed";
    c->dec_reset = 1;
    if (EVP_DecryptUpdate(c->dec, buf, &out_len, buf, (int)n) != 1 || (size_t)out_len != n)
        return "AES decryption failed";
    c->dec_reset = 0;

    *code = WECOM_ILLEGAL_BUFFER;
    pad = buf[n - 1];
    if (pad == 0 || pad > PAD_BLOCK || pad > n)
        return "invalid padding";
    content_len = n - pad;
    if (content_len < FRAME_HEAD)
        return "plaintext shorter than its header";
    msg_len = (uint32_t)buf[16] << 24 | (uint32_t)buf[17] << 16 | (uint32_t)buf[18] << 8 | buf[19];
    if (msg_len > content_len - FRAME_HEAD)
        return "message length field past the end of the plaintext";
    out->msg = (const char *)buf + FRAME_HEAD;
    out->msg_len = msg_len;
    out->rid = out->msg + msg_len;
    out->rid_len = content_len - FRAME_HEAD - msg_len;
    return NULL;
}

/* Pushes the receive id; when rid_idx is a stack index holding a string
 * with the same bytes, that string instead of a new one. */
static void push_receive_id(lua_State *L, const opened *o, int rid_idx)
{
    const char *expected;
    size_t expected_len;

    if (rid_idx != 0 && lua_type(L, rid_idx) == LUA_TSTRING
        && (expected = lua_tolstring(L, rid_idx, &expected_len), expected_len == o->rid_len)
        && memcmp(expected, o->rid, o->rid_len) == 0)
        lua_pushvalue(L, rid_idx);      /* the usual case: no new string */
    else
        lua_pushlstring(L, o->rid, o->rid_len);
}

/* Decrypts base64 text and pushes msg, receive_id, or nil, message, code. */
static int crypter_decrypt_raw(lua_State *L, crypter *c, const char *b64, size_t b64_len)
{
    unsigned char stack_buf[STACK_SCRATCH];
    unsigned char *buf;
    const char *err;
    opened o;
    int code;

    if (b64_len > WECOM_MAX_BODY)
        return wecom_fail_code(L, "ciphertext over 1 MiB", WECOM_ILLEGAL_BUFFER);
    buf = scratch(L, stack_buf, sizeof stack_buf, b64_decoded_max(b64_len));
    if ((err = crypter_decrypt_into(c, b64, b64_len, buf, &o, &code)) != NULL)
        return wecom_fail_code(L, err, code);
    lua_pushlstring(L, o.msg, o.msg_len);
    push_receive_id(L, &o, 0);
    return 2;
}

static int l_crypter_decrypt(lua_State *L)
{
    crypter *c = crypter_check(L, 1, METHOD("decrypt"));
    size_t b64_len;
    const char *b64 = wecom_check_string(L, 2, METHOD("decrypt"), "encrypt", &b64_len);

    return crypter_decrypt_raw(L, c, b64, b64_len);
}

/* Verify, then decrypt: msg, receive_id (returns 2) or nil, message, code
 * (returns 3). */
static int crypter_open_raw(lua_State *L, crypter *c, const char *sig, size_t sig_len,
                            const char *ts, size_t ts_len, const char *nonce, size_t nonce_len,
                            const char *enc, size_t enc_len)
{
    int r = crypter_verify_raw(c, sig, sig_len, ts, ts_len, nonce, nonce_len, enc, enc_len);

    if (r < 0)
        return wecom_fail_code(L, "SHA-1 failed", WECOM_COMPUTE_SIGNATURE);
    if (r == 0)
        return wecom_fail_code(L, "signature mismatch", WECOM_VALIDATE_SIGNATURE);
    return crypter_decrypt_raw(L, c, enc, enc_len);
}

/* c:open(msg_signature, timestamp, nonce, encrypt): verify, then decrypt. */
static int l_crypter_open(lua_State *L)
{
    crypter *c = crypter_check(L, 1, METHOD("open"));
    size_t sig_len, ts_len, nonce_len, enc_len;
    const char *sig = wecom_check_string(L, 2, METHOD("open"), "msg_signature", &sig_len);
    const char *ts = wecom_check_string(L, 3, METHOD("open"), "timestamp", &ts_len);
    const char *nonce = wecom_check_string(L, 4, METHOD("open"), "nonce", &nonce_len);
    const char *enc = wecom_check_string(L, 5, METHOD("open"), "encrypt", &enc_len);

    return crypter_open_raw(L, c, sig, sig_len, ts, ts_len, nonce, nonce_len, enc, enc_len);
}

/* c:encrypt(msg, receive_id [, random16]) -> base64 */
static int l_crypter_encrypt(lua_State *L)
{
    unsigned char stack_plain[STACK_SCRATCH];
    unsigned char stack_b64[STACK_SCRATCH + STACK_SCRATCH / 2];
    crypter *c = crypter_check(L, 1, METHOD("encrypt"));
    size_t msg_len, rid_len, rnd_len = 0, body, total, b64_len;
    const char *msg = wecom_check_string(L, 2, METHOD("encrypt"), "msg", &msg_len);
    const char *rid = wecom_check_string(L, 3, METHOD("encrypt"), "receive_id", &rid_len);
    const char *rnd = wecom_opt_string(L, 4, METHOD("encrypt"), "random16", &rnd_len);
    unsigned char *plain, *out;
    unsigned pad;
    int out_len = 0;

    if (rnd != NULL && rnd_len != RANDOM_LEN)
        wecom_bad_arg(L, 4, METHOD("encrypt"), "random16", "a string of 16 bytes");
    if (msg_len > WECOM_MAX_BODY || rid_len > WECOM_MAX_BODY)
        return wecom_fail_code(L, "message over 1 MiB", WECOM_ENCRYPT_AES);

    body = FRAME_HEAD + msg_len + rid_len;
    pad = PAD_BLOCK - (unsigned)(body % PAD_BLOCK);     /* 1..32 */
    total = body + pad;
    plain = scratch(L, stack_plain, sizeof stack_plain, total);
    out = scratch(L, stack_b64, sizeof stack_b64, b64_encoded_len(total));

    if (rnd != NULL)
        memcpy(plain, rnd, RANDOM_LEN);
    else if (RAND_bytes(plain, RANDOM_LEN) != 1)
        return wecom_fail_code(L, "the OpenSSL CSPRNG failed", WECOM_ENCRYPT_AES);
    plain[16] = (unsigned char)(msg_len >> 24);
    plain[17] = (unsigned char)(msg_len >> 16);
    plain[18] = (unsigned char)(msg_len >> 8);
    plain[19] = (unsigned char)msg_len;
    memcpy(plain + FRAME_HEAD, msg, msg_len);
    memcpy(plain + FRAME_HEAD + msg_len, rid, rid_len);
    memset(plain + body, (int)pad, pad);

    if (EVP_EncryptInit_ex(c->enc, NULL, NULL, NULL, c->key) != 1
        || EVP_EncryptUpdate(c->enc, plain, &out_len, plain, (int)total) != 1
        || (size_t)out_len != total)
        return wecom_fail_code(L, "AES encryption failed", WECOM_ENCRYPT_AES);

    b64_len = b64_encode(plain, total, (char *)out);
    lua_pushlstring(L, (const char *)out, b64_len);
    return 1;
}

/* ===== core.callback_open ============================================== */

/* Fields wecom.callback adds to an event (xml, type, corpid, userid,
 * agentid, time): the table is made big enough for them at once. */
#define EVENT_EXTRA_FIELDS 6

/* What the query-string form needs from a query on the C stack. */
#define QUERY_STACK 512

/* The three signed parameters, pointing into the caller's strings. */
typedef struct signed_params {
    const char *sig, *ts, *nonce;
    size_t sig_len, ts_len, nonce_len;
} signed_params;

/*
 * The work shared by both forms, from the signed parameters on: body at
 * index body_idx, the receive id to reuse at rid_idx, the boxed flag at
 * boxed_idx.  Pushes what l_callback_open documents and returns the count.
 * The plaintext is decrypted into a C buffer and parsed there; its texts
 * go from there into the event table.
 */
static int callback_open_body(lua_State *L, crypter *c, const signed_params *q, int body_idx,
                              int rid_idx, int boxed_idx)
{
    unsigned char stack_buf[STACK_SCRATCH];
    unsigned char *buf;
    size_t body_len;
    const char *body = lua_tolstring(L, body_idx, &body_len), *enc_text, *err;
    const xml_node *enc;
    char errbuf[XML_ERRBUF];
    xml_doc *d;
    opened o;
    int r, code, parsed;

    if (body_len == 0 || body_len > WECOM_MAX_BODY) {
        lua_pushboolean(L, 0);
        return 1;
    }
    d = wecom_xml_scratch_acquire(L);
    if (wecom_xml_parse(d, body, body_len, WECOM_MAX_DEPTH, XML_PARSER_AUTO, errbuf) != NULL
        || (enc = wecom_xml_only_leaf(d, "Encrypt")) == NULL) {
        wecom_xml_scratch_release(d);
        lua_pushboolean(L, 0);
        return 1;
    }
    /* The text may lie in d's buffer: d stays busy (and anchored) until it
     * is decrypted, and the plaintext's tree until the event is built. */
    enc_text = xml_node_text(d, enc);
    r = crypter_verify_raw(c, q->sig, q->sig_len, q->ts, q->ts_len, q->nonce, q->nonce_len,
                           enc_text, enc->text_len);
    if (r <= 0) {
        wecom_xml_scratch_release(d);
        return r < 0 ? wecom_fail_code(L, "SHA-1 failed", WECOM_COMPUTE_SIGNATURE)
                     : wecom_fail_code(L, "signature mismatch", WECOM_VALIDATE_SIGNATURE);
    }
    buf = scratch(L, stack_buf, sizeof stack_buf, b64_decoded_max(enc->text_len));
    if ((err = crypter_decrypt_into(c, enc_text, enc->text_len, buf, &o, &code)) != NULL) {
        wecom_xml_scratch_release(d);
        return wecom_fail_code(L, err, code);
    }
    /* Not XML, or XML that does not parse: msg, receive_id alone. */
    parsed = o.msg_len > 0 && o.msg[0] == '<'
             && wecom_xml_parse(d, o.msg, o.msg_len, WECOM_MAX_DEPTH, XML_PARSER_AUTO, errbuf) == NULL;
    if (parsed && lua_toboolean(L, boxed_idx))
        memcpy(lua_newuserdata(L, o.msg_len), o.msg, o.msg_len);   /* parsed: never empty */
    else
        lua_pushlstring(L, o.msg, o.msg_len);
    push_receive_id(L, &o, rid_idx);
    if (parsed)
        wecom_xml_push_root(L, d, EVENT_EXTRA_FIELDS);
    wecom_xml_scratch_release(d);
    return parsed ? 3 : 2;
}

/*
 * core.callback_open(crypter, msg_signature, timestamp, nonce, body
 * [, receive_id [, boxed]]): the work of wecom.callback's decrypt for an XML
 * envelope in one call, with the Encrypt text going from the envelope to
 * the cipher without becoming a Lua string or the envelope a table.
 *   -> msg, receive_id, event    event: msg decoded as xml_decode would,
 *                                with room for the fields callback adds
 *   -> msg, receive_id           msg is not XML, or XML that does not parse:
 *                                the caller's own parser reports it
 *   -> nil, message, code        as crypter:open
 *   -> false                     declined, not a failure: one of the four
 *                                after the crypter is not a string, or body
 *                                is not an XML envelope (within xml_decode's
 *                                limits) whose root has one Encrypt leaf with
 *                                text; the caller takes its general path,
 *                                which names the problem
 * receive_id (optional) is the one the caller expects: when the decrypted
 * one has the same bytes, that string comes back as receive_id (no new
 * string).  With boxed true, msg comes next to an event as a plain full
 * userdata holding its bytes (callback_plaintext makes it a string): a
 * caller that may never need the string does not make it, which under
 * LuaJIT means hashing it into the string table, where plaintexts of one
 * template and length collide.  The crypter is checked like any argument
 * (a bad one raises).
 */
static int l_callback_open(lua_State *L)
{
    crypter *c = crypter_check(L, 1, WECOM_FN("callback_open"));
    signed_params q;

    lua_settop(L, 7);
    if (lua_type(L, 2) != LUA_TSTRING || lua_type(L, 3) != LUA_TSTRING
        || lua_type(L, 4) != LUA_TSTRING || lua_type(L, 5) != LUA_TSTRING) {
        lua_pushboolean(L, 0);
        return 1;
    }
    q.sig = lua_tolstring(L, 2, &q.sig_len);
    q.ts = lua_tolstring(L, 3, &q.ts_len);
    q.nonce = lua_tolstring(L, 4, &q.nonce_len);
    return callback_open_body(L, c, &q, 5, 6, 7);
}

static int hex_digit(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes s[0..len) as wecom.url.unescape does (each %XX with two
 * hex digits becomes that byte, anything else stays) into out; returns the
 * length written (at most len). */
static size_t unescape_into(const char *s, size_t len, char *out)
{
    size_t i = 0, n = 0;

    while (i < len) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hex_digit((unsigned char)s[i + 1])) >= 0
            && (lo = hex_digit((unsigned char)s[i + 2])) >= 0) {
            out[n++] = (char)(hi << 4 | lo);
            i += 3;
        } else {
            out[n++] = s[i++];
        }
    }
    return n;
}

/*
 * Finds msg_signature, timestamp and nonce in a query string as
 * wecom.url.parse_query reads it: anything up to the first '?' skipped,
 * pairs split at '&' (empty ones skipped), key and value at the first '='
 * (no '=': the value is empty), both percent-decoded.  Values are decoded
 * into out (room for len bytes) when they hold a '%'.  1 when each of the
 * three is there exactly once; 0 when the general path must read the
 * query: one missing or repeated, or a key with a '%' (decoding it might
 * make it one of the three).
 */
static int query_params(const char *s, size_t len, char *out, signed_params *q)
{
    const char *end = s + len, *p = memchr(s, '?', len);
    size_t used = 0;
    int seen = 0;

    p = p != NULL ? p + 1 : s;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pair_end = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        const char *key_end = eq != NULL ? eq : pair_end, *val = eq != NULL ? eq + 1 : pair_end;
        size_t key_len = (size_t)(key_end - p), val_len = (size_t)(pair_end - val);
        const char **dst = NULL;
        size_t *dst_len = NULL;
        int bit = 0;

        if (memchr(p, '%', key_len) != NULL)
            return 0;
        if (key_len == 13 && memcmp(p, "msg_signature", 13) == 0)
            dst = &q->sig, dst_len = &q->sig_len, bit = 1;
        else if (key_len == 9 && memcmp(p, "timestamp", 9) == 0)
            dst = &q->ts, dst_len = &q->ts_len, bit = 2;
        else if (key_len == 5 && memcmp(p, "nonce", 5) == 0)
            dst = &q->nonce, dst_len = &q->nonce_len, bit = 4;
        if (dst != NULL) {
            if (seen & bit)
                return 0;
            seen |= bit;
            if (memchr(val, '%', val_len) == NULL) {
                *dst = val;
                *dst_len = val_len;
            } else {
                *dst = out + used;
                *dst_len = unescape_into(val, val_len, out + used);
                used += *dst_len;
            }
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return seen == 7;
}

/*
 * core.callback_open_query(crypter, query, body [, receive_id [, boxed]]):
 * the same with the query string as the request carried it, read as
 * wecom.url.parse_query reads it (see query_params).  Answers as
 * callback_open; false also when the query is not a string or does not
 * hold each signed parameter exactly once.
 */
static int l_callback_open_query(lua_State *L)
{
    crypter *c = crypter_check(L, 1, WECOM_FN("callback_open_query"));
    char stack_buf[QUERY_STACK];
    signed_params q;
    size_t len;
    const char *s;
    char *out;

    lua_settop(L, 5);
    if (lua_type(L, 2) != LUA_TSTRING || lua_type(L, 3) != LUA_TSTRING) {
        lua_pushboolean(L, 0);
        return 1;
    }
    s = lua_tolstring(L, 2, &len);
    if (len > WECOM_MAX_BODY) {
        lua_pushboolean(L, 0);
        return 1;
    }
    /* decoded values are never longer than the query */
    out = (char *)scratch(L, (unsigned char *)stack_buf, sizeof stack_buf, len);
    if (!query_params(s, len, out, &q)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    return callback_open_body(L, c, &q, 3, 4, 5);
}

/* core.callback_plaintext(box) -> the string a boxed msg of callback_open
 * holds.  A box is a full userdata without a metatable. */
static int l_callback_plaintext(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TUSERDATA || lua_getmetatable(L, 1))
        wecom_bad_arg(L, 1, WECOM_FN("callback_plaintext"), "box",
                      "a plaintext box from callback_open");
    lua_pushlstring(L, (const char *)lua_touserdata(L, 1), (size_t)lua_rawlen(L, 1));
    return 1;
}

/* ===== registration ==================================================== */

static const luaL_Reg crypter_methods[] = {
    { "signature", l_crypter_signature },
    { "verify", l_crypter_verify },
    { "decrypt", l_crypter_decrypt },
    { "open", l_crypter_open },
    { "encrypt", l_crypter_encrypt },
    { NULL, NULL }
};

static const wecom_class crypter_class = {
    CRYPTER_MT, crypter_methods, crypter_destroy, crypter_tostring
};

static const luaL_Reg crypto_funcs[] = {
    { "crypter", l_crypter },
    { "sha1_hex", l_sha1_hex },
    { "jsapi_signature", l_jsapi_signature },
    { "base64_encode", l_base64_encode },
    { "base64_decode", l_base64_decode },
    { "random_bytes", l_random_bytes },
    { "nonce", l_nonce },
    { "const_eq", l_const_eq },
    { "callback_plaintext", l_callback_plaintext },
    { NULL, NULL }
};

void wecom_crypto_open(lua_State *L)
{
    wecom_class_register(L, &crypter_class);
    luaL_setfuncs(L, crypto_funcs, 0);
    wecom_xml_scratch_new(L);
    wecom_xml_names_new(L);
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, l_callback_open, 2);
    lua_setfield(L, -4, "callback_open");
    /* the same scratch and names: the two are never busy at once but by
     * re-entry, which acquire handles */
    lua_pushcclosure(L, l_callback_open_query, 2);
    lua_setfield(L, -2, "callback_open_query");
}
