/*
 * callback_loop.c - the plain C reference for the callback benchmark: the
 * same OpenSSL + expat work as core crypter:open + xml_decode, written the
 * way a careful C program would (one EVP context per job, reused; an expat
 * parser reused through XML_ParserReset; leaf texts copied out).
 *
 *   cc -O2 -o callback_loop callback_loop.c -lcrypto -lexpat
 *   ./callback_loop FILE [ROUNDS]   -> "<messages per second> <checksum>"
 *
 * FILE is written by callback_bench.lua gen.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

typedef struct message {
    char *sig, *ts, *nonce, *enc;
    size_t sig_len, ts_len, nonce_len, enc_len;
} message;

/* What the parse keeps: leaf texts, as a consumer would read them. */
typedef struct sink {
    char text[8192];
    size_t len;
    int depth, leaves;
    size_t msgtype_len;
    int in_msgtype;
    XML_Parser parser;
} sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "callback_loop: %s\n", what);
    exit(1);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
    sink *s = ud;
    (void)attrs;
    s->depth++;
    s->in_msgtype = strcmp(name, "MsgType") == 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
    sink *s = ud;
    (void)name;
    s->depth--;
    s->leaves++;
    s->in_msgtype = 0;
}

static void XMLCALL on_text(void *ud, const XML_Char *text, int len)
{
    sink *s = ud;
    if (s->len + (size_t)len <= sizeof s->text) {
        memcpy(s->text + s->len, text, (size_t)len);
        s->len += (size_t)len;
    }
    if (s->in_msgtype)
        s->msgtype_len += (size_t)len;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *a, const XML_Char *b, const XML_Char *c, int d)
{
    (void)a; (void)b; (void)c; (void)d;
    XML_StopParser(((sink *)ud)->parser, XML_FALSE);
}

static int less(const char *a, size_t al, const char *b, size_t bl)
{
    int r = memcmp(a, b, al < bl ? al : bl);
    return r < 0 || (r == 0 && al < bl);
}

int main(int argc, char **argv)
{
    static const char hexd[] = "0123456789abcdef";
    FILE *f;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    char token[256], aes_key[64], receive_id[256];
    unsigned char key[48];
    message *msgs = NULL;
    size_t n = 0, ncap = 0, i;
    int rounds = argc > 2 ? atoi(argv[2]) : 5, round;
    double best = 1e30;
    unsigned long checksum = 0;
    EVP_MD *sha1;
    EVP_MD_CTX *md;
    EVP_CIPHER_CTX *aes;
    XML_Parser parser;
    sink s;
    unsigned char *buf = malloc(1 << 21);
    size_t token_len, rid_len;

    if (argc < 2)
        die("usage: callback_loop FILE [ROUNDS]");
    f = fopen(argv[1], "rb");
    if (f == NULL)
        die("cannot open the message file");
    if (fscanf(f, "%255s %63s %255s\n", token, aes_key, receive_id) != 3)
        die("bad header line");
    token_len = strlen(token);
    rid_len = strlen(receive_id);
    while ((got = getline(&line, &cap, f)) > 0) {
        message *m;
        char *p = line, *save = NULL;
        if (n == ncap) {
            ncap = ncap ? ncap * 2 : 1024;
            msgs = realloc(msgs, ncap * sizeof *msgs);
        }
        m = &msgs[n];
        line[got - 1] = line[got - 1] == '\n' ? '\0' : line[got - 1];
        m->sig = strdup(strtok_r(p, " ", &save));
        m->ts = strdup(strtok_r(NULL, " ", &save));
        m->nonce = strdup(strtok_r(NULL, " ", &save));
        m->enc = strdup(strtok_r(NULL, " ", &save));
        m->sig_len = strlen(m->sig);
        m->ts_len = strlen(m->ts);
        m->nonce_len = strlen(m->nonce);
        m->enc_len = strlen(m->enc);
        n++;
    }
    fclose(f);
    free(line);

    {   /* AESKey = base64(EncodingAESKey + "=") */
        char padded[45];
        memcpy(padded, aes_key, 43);
        padded[43] = '=';
        padded[44] = '\0';
        if (EVP_DecodeBlock(key, (unsigned char *)padded, 44) != 33)
            die("bad EncodingAESKey");
    }
    sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    md = EVP_MD_CTX_new();
    aes = EVP_CIPHER_CTX_new();
    if (!sha1 || !md || !aes || EVP_DecryptInit_ex(aes, EVP_aes_256_cbc(), NULL, key, key) != 1)
        die("OpenSSL setup");
    EVP_CIPHER_CTX_set_padding(aes, 0);
    parser = XML_ParserCreate(NULL);

    for (round = 0; round <= rounds; round++) {
        double t0 = now(), elapsed;
        unsigned long sum = 0;
        for (i = 0; i < n; i++) {
            message *m = &msgs[i];
            const char *piece[4] = { token, m->ts, m->nonce, m->enc };
            size_t len[4] = { token_len, m->ts_len, m->nonce_len, m->enc_len };
            unsigned char digest[20];
            char hex[40];
            unsigned dlen, pad;
            int a, b, outl, dec;
            uint32_t msg_len;
            size_t content;

            for (a = 1; a < 4; a++)
                for (b = a; b > 0 && less(piece[b], len[b], piece[b - 1], len[b - 1]); b--) {
                    const char *tp = piece[b]; size_t tl = len[b];
                    piece[b] = piece[b - 1]; len[b] = len[b - 1];
                    piece[b - 1] = tp; len[b - 1] = tl;
                }
            EVP_DigestInit_ex(md, sha1, NULL);
            for (a = 0; a < 4; a++)
                EVP_DigestUpdate(md, piece[a], len[a]);
            EVP_DigestFinal_ex(md, digest, &dlen);
            for (a = 0; a < 20; a++) {
                hex[2 * a] = hexd[digest[a] >> 4];
                hex[2 * a + 1] = hexd[digest[a] & 15];
            }
            if (m->sig_len != 40 || CRYPTO_memcmp(hex, m->sig, 40) != 0)
                die("signature mismatch");

            dec = EVP_DecodeBlock(buf, (unsigned char *)m->enc, (int)m->enc_len);
            if (dec < 0)
                die("bad base64");
            /* EVP_DecodeBlock counts '=' padding as zero bytes */
            if (m->enc_len > 0 && m->enc[m->enc_len - 1] == '=')
                dec -= m->enc[m->enc_len - 2] == '=' ? 2 : 1;
            if (dec == 0 || dec % 16 != 0)
                die("bad ciphertext length");
            if (EVP_DecryptInit_ex(aes, NULL, NULL, NULL, key) != 1
                || EVP_DecryptUpdate(aes, buf, &outl, buf, dec) != 1 || outl != dec)
                die("AES");
            pad = buf[dec - 1];
            if (pad == 0 || pad > 32 || pad > (unsigned)dec)
                die("padding");
            content = (size_t)dec - pad;
            if (content < 20)
                die("short");
            msg_len = (uint32_t)buf[16] << 24 | (uint32_t)buf[17] << 16 | (uint32_t)buf[18] << 8 | buf[19];
            if (msg_len > content - 20)
                die("length field");
            if (content - 20 - msg_len != rid_len || memcmp(buf + 20 + msg_len, receive_id, rid_len) != 0)
                die("receive id");

            XML_ParserReset(parser, NULL);
            XML_SetHashSalt(parser, 0x2545f4914f6cdd1dUL);     /* no getrandom() per document */
            s.parser = parser;
            s.len = 0; s.depth = 0; s.leaves = 0; s.msgtype_len = 0; s.in_msgtype = 0;
            XML_SetUserData(parser, &s);
            XML_SetElementHandler(parser, on_start, on_end);
            XML_SetCharacterDataHandler(parser, on_text);
            XML_SetStartDoctypeDeclHandler(parser, on_doctype);
            if (XML_Parse(parser, (const char *)buf + 20, (int)msg_len, XML_TRUE) != XML_STATUS_OK)
                die("xml");
            sum += s.msgtype_len;
        }
        elapsed = now() - t0;
        if (round > 0 && elapsed < best)
            best = elapsed;
        checksum = sum;
    }
    printf("%.0f %lu\n", (double)n / best, checksum);

    XML_ParserFree(parser);
    EVP_CIPHER_CTX_free(aes);
    EVP_MD_CTX_free(md);
    EVP_MD_free(sha1);
    for (i = 0; i < n; i++) {
        free(msgs[i].sig); free(msgs[i].ts); free(msgs[i].nonce); free(msgs[i].enc);
    }
    free(msgs);
    free(buf);
    return 0;
}
