/*
 * xml.c - core.xml_decode: XML into Lua tables, for callback envelopes and
 * events.
 *
 * Two parsers fill one small C tree (nodes in one array; names and texts
 * either pointing into the input or copied into one byte buffer); only
 * after parsing is the tree turned into tables, so no Lua error can unwind
 * through a parser and a failed parse leaves nothing behind.
 *
 * - The fast path (fast_parse) is a hand-written scanner for the plain
 *   subset WeCom actually sends: an optional `<?xml version="1.0"
 *   [encoding="UTF-8"] [standalone=..]?>` at offset 0, elements without
 *   attributes whose names are ASCII, character data without '&', '>' or
 *   '\r', CDATA sections, whitespace around the root, well-formed UTF-8
 *   without U+FFFE/U+FFFF and no control characters but tab and newline.
 *   It never reports an error: the moment anything is outside that
 *   subset or not well-formed (an attribute, a reference, a comment, a PI,
 *   a DOCTYPE, a BOM, a mismatched tag, depth over max_depth, ...) it
 *   gives up, and expat parses the whole document again.  So every error
 *   message and every refusal is expat's, and a document is accepted by
 *   the fast path only if expat would accept it with the same result.
 *   Expat costs about 3 us for even a small document; the scanner a tenth.
 * - Expat (doc_parse) records the same tree from its callbacks, which
 *   never touch the Lua state.
 * - The parser and both buffers are kept in a per-state userdata (an
 *   upvalue of xml_decode) and reused, so a typical callback costs no
 *   malloc in C.  If a finalizer re-enters xml_decode while the scratch is
 *   in use, or a memory error left it marked busy, a fresh one replaces it;
 *   the one in use stays anchored on the stack until its call is done.
 * - core.callback_open (at the end) is wecom.callback's decrypt of an XML
 *   envelope in one call: envelope tree, Encrypt text straight into
 *   crypto.c's verify + decrypt, plaintext tree, event table.
 * - No DTD at all: a DOCTYPE stops the parser, so there are no entity
 *   declarations, no entity expansion (billion laughs) and no external
 *   entities.  Attributes, comments and processing instructions are ignored.
 * - opts.parser = "expat" skips the fast path; "fast" uses only it and
 *   returns nil, "xml: outside the fast subset" where it gives up (both for
 *   differential tests).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>
#include <openssl/rand.h>

#include "wecom.h"

#define XML_SCRATCH_MT  "wecom.core.xml_scratch"
#define NO_NODE         (-1)
/* Scratch buffers larger than this are released after the call. */
#define KEEP_BYTES      (64 * 1024)
#define KEEP_NODES      1024

static const char too_deep[] = "nesting deeper than max_depth";

typedef struct xml_node {
    /* A name or text lives in the input (fast path, *_src set) or in the
     * doc's buffer at *_off (expat, and texts the fast path had to join). */
    const char *name_src, *text_src;
    size_t name_off, name_len;
    size_t text_off, text_len;      /* text of a leaf (ignored once it has children) */
    int parent, first_child, next_sibling, last_child;
    int n_children;
} xml_node;

typedef struct xml_doc {
    XML_Parser parser;              /* reused through XML_ParserReset */
    xml_node *nodes;
    int n_nodes, cap_nodes;
    char *buf;
    size_t len, cap;
    int current;                    /* the open element, NO_NODE outside the root */
    int depth, max_depth;
    const char *abort_reason;       /* set when a handler stopped the parser */
    unsigned long salt;             /* expat hash salt, random per scratch */
    int busy;
} xml_doc;

/* ===== recording (expat handlers, no Lua here) ========================= */

static void doc_abort(xml_doc *d, const char *reason)
{
    if (d->abort_reason == NULL)
        d->abort_reason = reason;
    XML_StopParser(d->parser, XML_FALSE);
}

static int buf_reserve(xml_doc *d, size_t extra)
{
    size_t need = d->len + extra, cap;
    char *p;

    if (need <= d->cap)
        return 1;
    cap = d->cap ? d->cap : 1024;
    while (cap < need)
        cap *= 2;
    p = realloc(d->buf, cap);
    if (p == NULL)
        return 0;
    d->buf = p;
    d->cap = cap;
    return 1;
}

static int node_new(xml_doc *d)
{
    if (d->n_nodes == d->cap_nodes) {
        int cap = d->cap_nodes ? d->cap_nodes * 2 : 64;
        xml_node *p = realloc(d->nodes, (size_t)cap * sizeof *p);
        if (p == NULL)
            return NO_NODE;
        d->nodes = p;
        d->cap_nodes = cap;
    }
    return d->n_nodes++;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    xml_doc *d = ud;
    size_t name_len = strlen(name);
    int idx;
    xml_node *n;

    (void)attrs;
    if (d->abort_reason != NULL)
        return;
    if (++d->depth > d->max_depth) {
        doc_abort(d, too_deep);
        return;
    }
    if (d->current != NO_NODE) {
        xml_node *parent = &d->nodes[d->current];
        /* The parent is no leaf after all: its text so far is dropped. */
        if (parent->first_child == NO_NODE)
            d->len = parent->text_off;
    }
    idx = node_new(d);
    if (idx == NO_NODE || !buf_reserve(d, name_len)) {
        doc_abort(d, "out of memory");
        return;
    }
    n = &d->nodes[idx];
    n->name_src = n->text_src = NULL;
    n->name_off = d->len;
    n->name_len = name_len;
    memcpy(d->buf + d->len, name, name_len);
    d->len += name_len;
    n->text_off = d->len;
    n->text_len = 0;
    n->parent = d->current;
    n->first_child = n->last_child = n->next_sibling = NO_NODE;
    n->n_children = 0;
    if (d->current != NO_NODE) {
        xml_node *parent = &d->nodes[d->current];
        if (parent->first_child == NO_NODE)
            parent->first_child = idx;
        else
            d->nodes[parent->last_child].next_sibling = idx;
        parent->last_child = idx;
        parent->n_children++;
    }
    d->current = idx;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    xml_doc *d = ud;

    (void)name;
    if (d->abort_reason != NULL || d->current == NO_NODE)
        return;
    d->depth--;
    d->current = d->nodes[d->current].parent;
}

/* Character data and CDATA alike.  A leaf's text is always the tail of the
 * buffer, so pieces are appended in place. */
static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
    xml_doc *d = ud;
    xml_node *n;

    if (d->abort_reason != NULL || d->current == NO_NODE)
        return;
    n = &d->nodes[d->current];
    if (n->first_child != NO_NODE)
        return;     /* text between child elements: ignored */
    if (!buf_reserve(d, (size_t)len)) {
        doc_abort(d, "out of memory");
        return;
    }
    memcpy(d->buf + d->len, s, (size_t)len);
    d->len += (size_t)len;
    n->text_len += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal_subset)
{
    (void)name; (void)sysid; (void)pubid; (void)has_internal_subset;
    doc_abort(ud, "DTD not allowed");
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int is_param,
                                   const XML_Char *value, int value_len, const XML_Char *base,
                                   const XML_Char *sysid, const XML_Char *pubid,
                                   const XML_Char *notation)
{
    (void)name; (void)is_param; (void)value; (void)value_len; (void)base;
    (void)sysid; (void)pubid; (void)notation;
    doc_abort(ud, "entity declarations not allowed");
}

/* ===== the scratch userdata ============================================ */

static void doc_release_big(xml_doc *d)
{
    if (d->cap > KEEP_BYTES) {
        free(d->buf);
        d->buf = NULL;
        d->cap = 0;
    }
    if (d->cap_nodes > KEEP_NODES) {
        free(d->nodes);
        d->nodes = NULL;
        d->cap_nodes = 0;
    }
}

static int scratch_gc(lua_State *L)
{
    xml_doc *d = luaL_checkudata(L, 1, XML_SCRATCH_MT);
    if (d->parser != NULL)
        XML_ParserFree(d->parser);
    free(d->nodes);
    free(d->buf);
    memset(d, 0, sizeof *d);
    return 0;
}

static xml_doc *scratch_new(lua_State *L)
{
    xml_doc *d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    /* Expat would otherwise read getrandom() and getenv() for every
     * document; one secret salt per scratch keeps the flooding protection. */
    if (RAND_bytes((unsigned char *)&d->salt, sizeof d->salt) != 1 || d->salt == 0)
        d->salt = (unsigned long)(size_t)d ^ 0x9e3779b97f4a7c15UL;
    luaL_getmetatable(L, XML_SCRATCH_MT);
    lua_setmetatable(L, -2);
    return d;
}

/* Parses s into d's tree.  Returns NULL on success or a message; for an
 * expat error the message is written to errbuf. */
static const char *doc_parse(xml_doc *d, const char *s, size_t len, int max_depth,
                             char *errbuf, size_t errlen)
{
    XML_Parser p;

    if (d->parser == NULL)
        d->parser = XML_ParserCreate(NULL);
    else if (!XML_ParserReset(d->parser, NULL)) {
        XML_ParserFree(d->parser);
        d->parser = XML_ParserCreate(NULL);
    }
    if (d->parser == NULL)
        return "out of memory";
    p = d->parser;
    d->n_nodes = 0;
    d->len = 0;
    d->current = NO_NODE;
    d->depth = 0;
    d->max_depth = max_depth;
    d->abort_reason = NULL;

    /* Reset clears every handler, so they are set per document. */
    XML_SetHashSalt(p, d->salt);
    XML_SetUserData(p, d);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetEntityDeclHandler(p, on_entity_decl);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);

    if (XML_Parse(p, s, (int)len, XML_TRUE) != XML_STATUS_OK) {
        if (d->abort_reason != NULL)
            return d->abort_reason;
        snprintf(errbuf, errlen, "%s at line %lu, column %lu",
                 XML_ErrorString(XML_GetErrorCode(p)),
                 (unsigned long)XML_GetCurrentLineNumber(p),
                 (unsigned long)XML_GetCurrentColumnNumber(p));
        return errbuf;
    }
    return NULL;
}

/* ===== the fast path (see the top of the file) ========================= */

/* Byte classes: what the scanner may pass over without a second look. */
enum { B_PLAIN = 0, B_MARKUP = 1, B_UTF8 = 2, B_BAD = 3 };

#define B_ROW(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
static const unsigned char byte_class[256] = {
    /* 0x00-0x1f: controls; tab and newline are plain, '\r' is left to
     * expat (it normalises line ends) */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 3, 3, 3, 3, 3,
    B_ROW(3),
    /* 0x20-0x3f: '&' '<' '>' */
    0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0,
    /* 0x40-0x7f: ']' */
    B_ROW(0),
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
    B_ROW(0), B_ROW(0),
    /* 0x80-0xbf: continuation bytes never start a character */
    B_ROW(3), B_ROW(3), B_ROW(3), B_ROW(3),
    /* 0xc0, 0xc1 would be overlong; 0xc2-0xf4 start a sequence */
    3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    B_ROW(2),
    B_ROW(2),
    2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
};
#undef B_ROW

/* Names and markup are a few bytes long: a loop beats a call to memcmp. */
static int same_bytes(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

#define IS_SPACE(c)      ((c) == ' ' || (c) == '\n' || (c) == '\t')
#define IS_NAME_START(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || (c) == '_')
#define IS_NAME_CHAR(c)  (IS_NAME_START(c) || ((c) >= '0' && (c) <= '9') || (c) == '-' || (c) == '.')
#define IS_CONT(c)       (((c) & 0xc0) == 0x80)

typedef const unsigned char *bytes;

/* Length of the well-formed UTF-8 sequence at p that is an XML Char, or 0
 * (overlong forms, surrogates, U+FFFE, U+FFFF, past U+10FFFF, cut off). */
static size_t utf8_char(bytes p, bytes end)
{
    size_t avail = (size_t)(end - p);
    unsigned char c = p[0];

    if (c < 0xe0)
        return avail >= 2 && IS_CONT(p[1]) ? 2 : 0;
    if (c < 0xf0) {
        if (avail < 3 || !IS_CONT(p[1]) || !IS_CONT(p[2]))
            return 0;
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
            return 0;
        if (c == 0xef && p[1] == 0xbf && p[2] >= 0xbe)
            return 0;
        return 3;
    }
    if (avail < 4 || !IS_CONT(p[1]) || !IS_CONT(p[2]) || !IS_CONT(p[3]))
        return 0;
    if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
        return 0;
    return 4;
}

static bytes skip_space(bytes p, bytes end)
{
    while (p < end && IS_SPACE(*p))
        p++;
    return p;
}

/*
 * skip_plain(p, end, a, b, c): the first byte from p that is not printable
 * ASCII or is one of a, b, c, as far as a whole 16- (SSE2, every x86-64)
 * or 8-byte block (SWAR) shows it; fewer than 8 bytes before end are left
 * to the caller, and so are tab and newline, which stop the skip.
 */
#if defined(__SSE2__) && !defined(WECOM_XML_NO_SIMD)
#include <emmintrin.h>

static bytes skip_plain(bytes p, bytes end, char a, char b, char c)
{
    /* as signed bytes, everything >= 0x80 and every control is below 0x20 */
    const __m128i low = _mm_set1_epi8(0x20), ma = _mm_set1_epi8(a),
                  mb = _mm_set1_epi8(b), mc = _mm_set1_epi8(c);

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, low), _mm_cmpeq_epi8(v, ma)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, mb), _mm_cmpeq_epi8(v, mc)));
        int mask = _mm_movemask_epi8(hit);
        if (mask != 0)
            return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
    return p;
}
#else
/* Eight bytes at a time (SWAR): nonzero when a byte of w is >= 0x80, below
 * 0x20, or equal to one of the markup bytes the caller tests for. */
#define ONES            UINT64_C(0x0101010101010101)
#define HIGHS           UINT64_C(0x8080808080808080)
#define HAS_BELOW(w, n) (((w) - ONES * (n)) & ~(w) & HIGHS)
#define HAS_BYTE(w, b)  HAS_BELOW((w) ^ (ONES * (b)), 1)

static uint64_t load8(bytes p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static bytes skip_plain(bytes p, bytes end, char a, char b, char c)
{
    while (end - p >= 8) {
        uint64_t w = load8(p);
        if ((w & HIGHS) | HAS_BELOW(w, 0x20) | HAS_BYTE(w, (unsigned char)a)
            | HAS_BYTE(w, (unsigned char)b) | HAS_BYTE(w, (unsigned char)c))
            break;
        p += 8;
    }
    return p;
}
#endif

/* Past the character at p, which is not a markup byte: a plain byte (tab,
 * newline, or one near the end that skip_plain left) or a valid UTF-8
 * sequence; NULL for a control character or a stray byte. */
static bytes next_char(bytes p, bytes end)
{
    size_t n;

    switch (byte_class[*p]) {
    case B_PLAIN:
        return p + 1;
    case B_UTF8:
        n = utf8_char(p, end);
        return n ? p + n : NULL;
    default:
        return NULL;
    }
}

/* Character data from p: the '<' that ends it, end, or NULL to give up. */
static bytes scan_text(bytes p, bytes end)
{
    while (p < end) {
        p = skip_plain(p, end, '<', '&', '>');
        if (p == end)
            break;
        if (byte_class[*p] == B_MARKUP) {
            if (*p == '<')
                return p;
            if (*p != ']')
                return NULL;    /* '&', '>' */
            p++;
        } else if ((p = next_char(p, end)) == NULL) {
            return NULL;
        }
    }
    return p;
}

/* A CDATA section's content from p: its "]]>", or NULL. */
static bytes scan_cdata(bytes p, bytes end)
{
    while (p < end) {
        p = skip_plain(p, end, ']', ']', ']');
        if (p == end)
            break;
        if (byte_class[*p] == B_MARKUP) {
            if (*p == ']' && end - p >= 3 && p[1] == ']' && p[2] == '>')
                return p;
            p++;
        } else if ((p = next_char(p, end)) == NULL) {
            return NULL;
        }
    }
    return NULL;
}

/* `name Eq "value"` of the XML declaration, value one of values. */
static bytes scan_pseudo_attr(bytes p, bytes end, const char *name,
                              const char *const *values)
{
    size_t len = strlen(name);
    unsigned char quote;

    if ((size_t)(end - p) < len || memcmp(p, name, len) != 0)
        return NULL;
    p = skip_space(p + len, end);
    if (p == end || *p != '=')
        return NULL;
    p = skip_space(p + 1, end);
    if (p == end || (*p != '"' && *p != '\''))
        return NULL;
    quote = *p++;
    for (; *values != NULL; values++) {
        len = strlen(*values);
        if ((size_t)(end - p) > len && memcmp(p, *values, len) == 0 && p[len] == quote)
            return p + len + 1;
    }
    return NULL;
}

/* The rest of an XML declaration after "<?xml", in the plain form only:
 * version 1.0, encoding UTF-8 if any, standalone if any. */
static bytes scan_declaration(bytes p, bytes end)
{
    static const char *const versions[] = { "1.0", NULL };
    static const char *const encodings[] = { "UTF-8", "utf-8", NULL };
    static const char *const standalone[] = { "yes", "no", NULL };
    bytes q;

    q = skip_space(p, end);
    if (q == p || (p = scan_pseudo_attr(q, end, "version", versions)) == NULL)
        return NULL;
    q = skip_space(p, end);
    if (q != p && end - q > 8 && memcmp(q, "encoding", 8) == 0) {
        if ((p = scan_pseudo_attr(q, end, "encoding", encodings)) == NULL)
            return NULL;
        q = skip_space(p, end);
    }
    if (q != p && end - q > 10 && memcmp(q, "standalone", 10) == 0) {
        if ((p = scan_pseudo_attr(q, end, "standalone", standalone)) == NULL)
            return NULL;
        q = skip_space(p, end);
    }
    if (end - q < 2 || q[0] != '?' || q[1] != '>')
        return NULL;
    return q + 2;
}

/* A new element under d->current; the name points into the input. */
static int fast_element(xml_doc *d, bytes name, size_t name_len)
{
    int idx = node_new(d);
    xml_node *n;

    if (idx == NO_NODE)
        return NO_NODE;
    n = &d->nodes[idx];
    n->name_src = (const char *)name;
    n->name_len = name_len;
    n->name_off = n->text_off = 0;
    n->text_src = n->name_src;      /* any valid pointer for the empty text */
    n->text_len = 0;
    n->parent = d->current;
    n->first_child = n->last_child = n->next_sibling = NO_NODE;
    n->n_children = 0;
    if (d->current != NO_NODE) {
        xml_node *parent = &d->nodes[d->current];
        if (parent->first_child == NO_NODE) {
            /* no leaf after all: text it had to join is dropped */
            if (parent->text_src == NULL)
                d->len = parent->text_off;
            parent->first_child = idx;
        } else {
            d->nodes[parent->last_child].next_sibling = idx;
        }
        parent->last_child = idx;
        parent->n_children++;
    }
    return idx;
}

/* Adds a piece of text to the open element.  A leaf's first piece stays in
 * the input; more pieces (text next to CDATA) are joined in the buffer. */
static int fast_text(xml_doc *d, bytes s, size_t len)
{
    xml_node *n = &d->nodes[d->current];

    if (n->first_child != NO_NODE || len == 0)
        return 1;
    if (n->text_len == 0) {
        n->text_src = (const char *)s;
    } else {
        if (!buf_reserve(d, n->text_len + len))
            return 0;
        if (n->text_src != NULL) {
            n->text_off = d->len;
            memcpy(d->buf + d->len, n->text_src, n->text_len);
            d->len += n->text_len;
            n->text_src = NULL;
        }
        memcpy(d->buf + d->len, s, len);
        d->len += len;
    }
    n->text_len += len;
    return 1;
}

/* Parses s into d's tree if it lies in the fast subset: 1, else 0 (the
 * tree is then garbage and expat must parse). */
static int fast_parse(xml_doc *d, const char *input, size_t len, int max_depth)
{
    bytes p = (bytes)input, end = p + len, q;
    int depth = 0;

    d->n_nodes = 0;
    d->len = 0;
    d->current = NO_NODE;

    if (len >= 6 && memcmp(p, "<?xml", 5) == 0) {
        if ((p = scan_declaration(p + 5, end)) == NULL)
            return 0;
    }
    p = skip_space(p, end);
    if (end - p < 2 || p[0] != '<' || !IS_NAME_START(p[1]))
        return 0;

    for (;;) {
        /* p is at a '<' inside the root, or at the root's start tag */
        if (end - p < 2)
            return 0;
        if (IS_NAME_START(p[1])) {
            bytes name = p + 1;
            int idx;

            for (q = name + 1; q < end && IS_NAME_CHAR(*q); q++)
                ;
            idx = fast_element(d, name, (size_t)(q - name));
            if (idx == NO_NODE || ++depth > max_depth)
                return 0;
            q = skip_space(q, end);
            if (q < end && *q == '>') {
                d->current = idx;
                p = q + 1;
            } else if (end - q >= 2 && q[0] == '/' && q[1] == '>') {
                p = q + 2;
                if (--depth == 0)
                    break;
            } else {
                return 0;       /* an attribute, or not well-formed */
            }
        } else if (p[1] == '/') {
            const xml_node *n = &d->nodes[d->current];

            q = p + 2;
            if ((size_t)(end - q) <= n->name_len || !same_bytes((const char *)q, n->name_src, n->name_len))
                return 0;
            q = skip_space(q + n->name_len, end);
            if (q == end || *q != '>')
                return 0;
            p = q + 1;
            d->current = n->parent;
            if (--depth == 0)
                break;
        } else if (p[1] == '!') {
            if (end - p < 12 || !same_bytes((const char *)p + 2, "[CDATA[", 7))
                return 0;       /* a comment, or not well-formed */
            if ((q = scan_cdata(p + 9, end)) == NULL || !fast_text(d, p + 9, (size_t)(q - (p + 9))))
                return 0;
            p = q + 3;
        } else {
            return 0;           /* a processing instruction, or not well-formed */
        }
        q = scan_text(p, end);
        if (q == NULL || q == end || !fast_text(d, p, (size_t)(q - p)))
            return 0;
        p = q;
    }
    return skip_space(p, end) == end;
}

/* ===== conversion to Lua (after parsing) =============================== */

static void push_element(lua_State *L, const xml_doc *d, int idx, int depth);

static const char *node_name(const xml_doc *d, const xml_node *n)
{
    return n->name_src != NULL ? n->name_src : d->buf + n->name_off;
}

static const char *node_text(const xml_doc *d, const xml_node *n)
{
    return n->text_src != NULL ? n->text_src : d->buf + n->text_off;
}

/* The usual case, checked in C for a few children: no name repeats, so
 * the children go straight into the table without a lookup each. */
static int names_unique(const xml_doc *d, const xml_node *n)
{
    int a, b;

    if (n->n_children > 16)
        return 0;
    for (a = n->first_child; a != NO_NODE; a = d->nodes[a].next_sibling)
        for (b = d->nodes[a].next_sibling; b != NO_NODE; b = d->nodes[b].next_sibling)
            if (d->nodes[a].name_len == d->nodes[b].name_len
                && same_bytes(node_name(d, &d->nodes[a]), node_name(d, &d->nodes[b]),
                              d->nodes[a].name_len))
                return 0;
    return 1;
}

/* Pushes a table of node idx's children by name; repeats become arrays.
 * The table has room for `extra` more fields. */
static void push_children(lua_State *L, const xml_doc *d, int idx, int depth, int extra)
{
    const xml_node *n = &d->nodes[idx];
    int tbl, lists, child;

    luaL_checkstack(L, 8, "xml: nesting too deep for the Lua stack");
    lua_createtable(L, 0, n->n_children + extra);
    tbl = lua_gettop(L);
    if (names_unique(d, n)) {
        for (child = n->first_child; child != NO_NODE; child = d->nodes[child].next_sibling) {
            const xml_node *c = &d->nodes[child];
            lua_pushlstring(L, node_name(d, c), c->name_len);
            push_element(L, d, child, depth + 1);
            lua_rawset(L, tbl);
        }
        return;
    }
    /* Names that already hold an array (an element value can itself be a
     * table, so the type cannot tell); created on the first repeat. */
    lua_pushnil(L);
    lists = tbl + 1;
    for (child = n->first_child; child != NO_NODE; child = d->nodes[child].next_sibling) {
        const xml_node *c = &d->nodes[child];

        lua_pushlstring(L, node_name(d, c), c->name_len);     /* key */
        lua_pushvalue(L, -1);
        lua_rawget(L, tbl);                                         /* key, existing */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            push_element(L, d, child, depth + 1);
            lua_rawset(L, tbl);
            continue;
        }
        lua_pop(L, 1);                                              /* key */
        if (lua_isnil(L, lists)) {
            lua_newtable(L);
            lua_replace(L, lists);
        }
        lua_pushvalue(L, -1);
        lua_rawget(L, lists);                                       /* key, is_list */
        if (lua_toboolean(L, -1)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_rawget(L, tbl);                                     /* key, list */
            push_element(L, d, child, depth + 1);
            lua_rawseti(L, -2, (int)lua_rawlen(L, -2) + 1);
            lua_pop(L, 2);
        } else {
            lua_pop(L, 1);
            lua_createtable(L, 2, 0);                               /* key, list */
            lua_pushvalue(L, -2);
            lua_rawget(L, tbl);
            lua_rawseti(L, -2, 1);
            push_element(L, d, child, depth + 1);
            lua_rawseti(L, -2, 2);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);                                      /* key, key, list */
            lua_rawset(L, tbl);                                     /* key */
            lua_pushboolean(L, 1);
            lua_rawset(L, lists);
        }
    }
    lua_pop(L, 1);                                                  /* lists */
}

static void push_element(lua_State *L, const xml_doc *d, int idx, int depth)
{
    const xml_node *n = &d->nodes[idx];

    if (n->first_child == NO_NODE)
        lua_pushlstring(L, node_text(d, n), n->text_len);
    else
        push_children(L, d, idx, depth, 0);
}

/* ===== core.xml_decode ================================================= */

static lua_Integer opt_int_field(lua_State *L, int opts, const char *field, lua_Integer def,
                                 lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = def;

    lua_getfield(L, opts, field);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "xml_decode: option '%s' must be a number", field);
        v = lua_tointeger(L, -1);
        if (v < lo || v > hi || (lua_Number)v != lua_tonumber(L, -1))
            luaL_error(L, "xml_decode: option '%s' must be an integer in %d..%d",
                       field, (int)lo, (int)hi);
    }
    lua_pop(L, 1);
    return v;
}

enum { PARSER_AUTO, PARSER_EXPAT, PARSER_FAST };

static int opt_parser(lua_State *L, int opts)
{
    static const char *const names[] = { "auto", "expat", "fast", NULL };
    int which;

    lua_getfield(L, opts, "parser");
    which = lua_isnil(L, -1) ? PARSER_AUTO : luaL_checkoption(L, -1, NULL, names);
    lua_pop(L, 1);
    return which;
}

/* The closure's scratch, marked busy and anchored on the stack: a
 * finalizer that re-enters while it is busy gets a fresh one, and the one
 * in use must stay alive until this call is done with it. */
static xml_doc *scratch_acquire(lua_State *L)
{
    xml_doc *d = lua_touserdata(L, lua_upvalueindex(1));

    if (d->busy) {
        d = scratch_new(L);
        lua_pushvalue(L, -1);
        lua_replace(L, lua_upvalueindex(1));
    } else {
        lua_pushvalue(L, lua_upvalueindex(1));
    }
    d->busy = 1;
    return d;
}

static void scratch_release(xml_doc *d)
{
    d->busy = 0;
    doc_release_big(d);
}

/* Parses s into d's tree.  NULL, or the message to show after "xml: ". */
static const char *doc_parse_any(xml_doc *d, const char *s, size_t len, int max_depth, int parser,
                                 char *errbuf, size_t errlen)
{
    if (parser != PARSER_EXPAT && fast_parse(d, s, len, max_depth))
        return NULL;
    if (parser == PARSER_FAST)
        return "outside the fast subset";
    return doc_parse(d, s, len, max_depth, errbuf, errlen);
}

static void push_parse_error(lua_State *L, const char *err, int max_depth)
{
    if (err == too_deep)
        lua_pushfstring(L, "xml: %s (%d)", err, max_depth);
    else
        lua_pushfstring(L, "xml: %s", err);
}

/* core.xml_decode(s [, { max_size =, max_depth =, parser = }])
 *   -> tbl, root_name | nil, err */
static int l_xml_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    lua_Integer max_size = WECOM_MAX_BODY, max_depth = WECOM_MAX_DEPTH;
    int parser = PARSER_AUTO;
    char errbuf[160];
    const char *err;
    xml_doc *d;

    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        max_size = opt_int_field(L, 2, "max_size", max_size, 0, INT_MAX);
        max_depth = opt_int_field(L, 2, "max_depth", max_depth, 1, 10000);
        parser = opt_parser(L, 2);
    }
    if (len > (size_t)max_size) {
        lua_pushnil(L);
        lua_pushfstring(L, "xml: document of %d bytes is over max_size (%d)", (int)(len > INT_MAX ? INT_MAX : len),
                        (int)max_size);
        return 2;
    }
    if (len == 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "xml: empty document");
        return 2;
    }

    d = scratch_acquire(L);
    err = doc_parse_any(d, s, len, (int)max_depth, parser, errbuf, sizeof errbuf);
    if (err != NULL) {
        scratch_release(d);
        lua_pushnil(L);
        push_parse_error(L, err, (int)max_depth);
        return 2;
    }
    push_children(L, d, 0, 1, 0);
    lua_pushlstring(L, node_name(d, &d->nodes[0]), d->nodes[0].name_len);
    scratch_release(d);
    return 2;
}

/* ===== core.callback_open ============================================== */

/* Fields wecom.callback adds to an event (xml, type, corpid, userid,
 * agentid, time): the table is made big enough for them at once. */
#define EVENT_EXTRA_FIELDS 6

/* The root's one child element called name, if it is a leaf with text. */
static const xml_node *only_leaf_text(const xml_doc *d, const char *name)
{
    size_t name_len = strlen(name);
    const xml_node *found = NULL;
    int child;

    for (child = d->nodes[0].first_child; child != NO_NODE; child = d->nodes[child].next_sibling) {
        const xml_node *c = &d->nodes[child];
        if (c->name_len == name_len && memcmp(node_name(d, c), name, name_len) == 0) {
            if (found != NULL)
                return NULL;
            found = c;
        }
    }
    if (found == NULL || found->first_child != NO_NODE || found->text_len == 0)
        return NULL;
    return found;
}

/*
 * core.callback_open(crypter, msg_signature, timestamp, nonce, body): the
 * work of wecom.callback's decrypt for an XML envelope in one call, with
 * the Encrypt text going from the envelope to the cipher without becoming
 * a Lua string or the envelope a table.
 *   -> false                     one of the last four is not a string, or
 *                                body is not an XML envelope (with the
 *                                limits of xml_decode) whose root has one
 *                                Encrypt leaf with text: the caller takes
 *                                its general path, which names the problem
 *   -> nil, code, message        as crypter:open
 *   -> msg, receive_id, event    event: msg decoded as xml_decode would,
 *                                with room for the fields callback adds,
 *                                when msg starts with '<'
 *   -> msg, receive_id, nil, err err: xml_decode's message for it
 *   -> msg, receive_id           msg does not start with '<'
 */
static int l_callback_open(lua_State *L)
{
    struct crypter *c = wecom_crypter_check(L, 1);
    size_t sig_len, ts_len, nonce_len, body_len, msg_len;
    const char *sig, *ts, *nonce, *body, *msg, *err;
    const xml_node *enc;
    char errbuf[160];
    xml_doc *d;
    int n;

    lua_settop(L, 5);
    if (lua_type(L, 2) != LUA_TSTRING || lua_type(L, 3) != LUA_TSTRING
        || lua_type(L, 4) != LUA_TSTRING || lua_type(L, 5) != LUA_TSTRING) {
        lua_pushboolean(L, 0);
        return 1;
    }
    sig = lua_tolstring(L, 2, &sig_len);
    ts = lua_tolstring(L, 3, &ts_len);
    nonce = lua_tolstring(L, 4, &nonce_len);
    body = lua_tolstring(L, 5, &body_len);
    if (body_len == 0 || body_len > WECOM_MAX_BODY) {
        lua_pushboolean(L, 0);
        return 1;
    }
    d = scratch_acquire(L);                                         /* 6 */
    if (doc_parse_any(d, body, body_len, WECOM_MAX_DEPTH, PARSER_AUTO, errbuf, sizeof errbuf) != NULL
        || (enc = only_leaf_text(d, "Encrypt")) == NULL) {
        scratch_release(d);
        lua_pushboolean(L, 0);
        return 1;
    }
    /* The text may lie in d's buffer: d is busy and anchored until here. */
    n = wecom_crypter_open(L, c, sig, sig_len, ts, ts_len, nonce, nonce_len,
                           node_text(d, enc), enc->text_len);
    /* msg and receive_id on top (a scratch userdata may lie below them) */
    if (n != 2 || (msg = lua_tolstring(L, -2, &msg_len))[0] != '<' || msg_len > WECOM_MAX_BODY) {
        scratch_release(d);
        return n;
    }
    err = doc_parse_any(d, msg, msg_len, WECOM_MAX_DEPTH, PARSER_AUTO, errbuf, sizeof errbuf);
    if (err != NULL) {
        scratch_release(d);
        lua_pushnil(L);
        push_parse_error(L, err, WECOM_MAX_DEPTH);
        return 4;
    }
    push_children(L, d, 0, 1, EVENT_EXTRA_FIELDS);
    scratch_release(d);
    return 3;
}

void wecom_xml_open(lua_State *L)
{
    if (luaL_newmetatable(L, XML_SCRATCH_MT)) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    scratch_new(L);
    lua_pushcclosure(L, l_xml_decode, 1);
    lua_setfield(L, -2, "xml_decode");
    scratch_new(L);
    lua_pushcclosure(L, l_callback_open, 1);
    lua_setfield(L, -2, "callback_open");
}
