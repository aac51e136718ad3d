/*
 * xml_scan.c - the fast path of core.xml_decode and core.callback_open: a
 * hand-written scanner for the plain subset of XML that WeCom sends.
 *
 * The subset: an optional `<?xml version="1.0" [encoding="UTF-8"]
 * [standalone=..]?>` at offset 0, elements without attributes whose names
 * are ASCII, character data without '&', '>' or '\r', CDATA sections,
 * whitespace around the root, well-formed UTF-8 without U+FFFE/U+FFFF and
 * no control characters but tab and newline.
 *
 * The scanner never reports an error: the moment anything is outside that
 * subset or not well-formed (an attribute, a reference, a comment, a PI, a
 * DOCTYPE, a BOM, a mismatched tag, depth over max_depth, ...) it gives up
 * and xml.c has expat parse the whole document again.  So every error
 * message and every refusal is expat's, and a document is accepted here
 * only if expat would accept it with the same result (the differential
 * specs and tools/fuzz/fuzz_xml check exactly that).  Expat costs about
 * 3 us for even a small document; the scanner a tenth.
 *
 * It fills the same tree as expat (xml.h), with names and texts pointing
 * into the input; only text next to CDATA is joined into the buffer.
 */
#include <stdint.h>
#include <string.h>

#include "xml.h"

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

/* Name bytes: 1 where a name may start (ASCII letters, '_'), 2 where it
 * may only go on (digits, '-', '.'). */
#define N_ROW0 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
static const unsigned char name_class[256] = {
    N_ROW0, N_ROW0,
    /* 0x20-0x3f: '-' '.' and the digits */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0,
    /* 0x40-0x7f: letters and '_' */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0,
    N_ROW0, N_ROW0, N_ROW0, N_ROW0, N_ROW0, N_ROW0, N_ROW0, N_ROW0,
};
#undef N_ROW0

#define IS_SPACE(c)      ((c) == ' ' || (c) == '\n' || (c) == '\t')
#define IS_NAME_START(c) (name_class[(unsigned char)(c)] == 1)
#define IS_NAME_CHAR(c)  (name_class[(unsigned char)(c)] != 0)
#define IS_CONT(c)       (((c) & 0xc0) == 0x80)

typedef const unsigned char *bytes;

/* Length of the well-formed UTF-8 sequence at p that is an XML Char, or 0
 * (overlong forms, surrogates, U+FFFE, U+FFFF, past U+10FFFF, cut off). */
static inline size_t utf8_char(bytes p, bytes end)
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

/* The first byte from p that cannot go on a name, as far as a 16-byte
 * block shows it (the caller finishes byte by byte). */
static bytes skip_name(bytes p, bytes end)
{
    if (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* as signed bytes, everything >= 0x80 is below every range here;
         * v | 0x20 maps 'A'-'Z' onto 'a'-'z' and nothing else into them */
        __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
        __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(folded, _mm_set1_epi8('a' - 1)),
                                       _mm_cmplt_epi8(folded, _mm_set1_epi8('z' + 1)));
        __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                      _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        __m128i punct = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')),
                                     _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')),
                                                  _mm_cmpeq_epi8(v, _mm_set1_epi8('.'))));
        int mask = ~_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), punct)) & 0xffff;
        return p + (mask != 0 ? __builtin_ctz((unsigned)mask) : 16);
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

static bytes skip_name(bytes p, bytes end)
{
    (void)end;
    return p;
}
#endif

/* Past the character at p, which is not a markup byte: a plain byte (tab,
 * newline, or one near the end that skip_plain left) or a valid UTF-8
 * sequence; NULL for a control character or a stray byte. */
static inline bytes next_char(bytes p, bytes end)
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
    /* Most text is none at all, or the line break between two elements. */
    if (p < end && *p == '<')
        return p;
    while (p < end && (*p == '\n' || *p == ' ' || *p == '\t'))
        p++;
    if (p < end && *p == '<')
        return p;
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
    int idx;
    xml_node *n;

    /* the parent is no leaf after all: text it had to join is dropped */
    if (d->current != XML_NO_NODE) {
        const xml_node *parent = &d->nodes[d->current];
        if (parent->first_child == XML_NO_NODE && parent->text_src == NULL)
            d->len = parent->text_off;
    }
    idx = xml_node_new(d);
    if (idx == XML_NO_NODE)
        return XML_NO_NODE;
    n = &d->nodes[idx];
    n->name_src = (const char *)name;
    n->name_len = name_len;
    n->name_off = n->text_off = 0;
    n->text_src = n->name_src;      /* any valid pointer for the empty text */
    n->text_len = 0;
    xml_node_link(d, idx);
    return idx;
}

/* Joins a second piece of a leaf's text (text next to CDATA) with the
 * first in the buffer.  1, or 0 when out of memory. */
static int join_text(xml_doc *d, xml_node *n, bytes s, size_t len)
{
    if (!xml_buf_reserve(d, n->text_len + len))
        return 0;
    if (n->text_src != NULL) {
        n->text_off = d->len;
        memcpy(d->buf + d->len, n->text_src, n->text_len);
        d->len += n->text_len;
        n->text_src = NULL;
    }
    memcpy(d->buf + d->len, s, len);
    d->len += len;
    n->text_len += len;
    return 1;
}

/* Adds a piece of text to the open element.  A leaf's first piece stays in
 * the input; more pieces are joined in the buffer. */
static inline int fast_text(xml_doc *d, bytes s, size_t len)
{
    xml_node *n = &d->nodes[d->current];

    if (n->first_child != XML_NO_NODE || len == 0)
        return 1;
    if (n->text_len != 0)
        return join_text(d, n, s, len);
    n->text_src = (const char *)s;
    n->text_len = len;
    return 1;
}

/* Parses s into d's tree if it lies in the fast subset: 1, else 0 (the
 * tree is then garbage and expat must parse). */
int wecom_xml_scan(xml_doc *d, const char *input, size_t len, int max_depth)
{
    bytes p = (bytes)input, end = p + len, q;
    int depth = 0;

    d->n_nodes = 0;
    d->len = 0;
    d->current = XML_NO_NODE;

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

            for (q = skip_name(name + 1, end); q < end && IS_NAME_CHAR(*q); q++)
                ;
            idx = fast_element(d, name, (size_t)(q - name));
            if (idx == XML_NO_NODE || ++depth > max_depth)
                return 0;
            if (q < end && *q != '>')
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
            if ((size_t)(end - q) <= n->name_len || !xml_same_bytes((const char *)q, n->name_src, n->name_len))
                return 0;
            q += n->name_len;
            if (*q != '>')      /* q < end: checked with the name */
                q = skip_space(q, end);
            if (q == end || *q != '>')
                return 0;
            p = q + 1;
            d->current = n->parent;
            if (--depth == 0)
                break;
        } else if (p[1] == '!') {
            if (end - p < 12 || !xml_same_bytes((const char *)p + 2, "[CDATA[", 7))
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
