/*
 * http_loop.c - the reference for bench/http.sh: sequential HTTPS GETs from
 * C, reusing one libcurl easy handle (so one keep-alive connection).
 *
 *   http_loop <url> <ca_file> <calls>   ->  prints "<calls/s>"
 *
 * It keeps the response body and checks the status like the Lua client
 * does, so both sides do the same work per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

typedef struct {
    char *data;
    size_t len, cap;
} buffer;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    buffer *b = ud;
    size_t len = size * n;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        char *d;
        while (cap < b->len + len)
            cap *= 2;
        d = realloc(b->data, cap);
        if (d == NULL)
            return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return len;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    buffer body = { NULL, 0, 0 };
    long calls, i, status = 0;
    double t0, elapsed;
    CURL *e;

    if (argc != 4) {
        fprintf(stderr, "usage: %s <url> <ca_file> <calls>\n", argv[0]);
        return 2;
    }
    calls = atol(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    e = curl_easy_init();
    if (e == NULL)
        return 1;
    curl_easy_setopt(e, CURLOPT_URL, argv[1]);
    curl_easy_setopt(e, CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);

    t0 = seconds();
    for (i = 0; i < calls; i++) {
        CURLcode rc;
        body.len = 0;
        rc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (rc != CURLE_OK || status != 200 || body.len == 0) {
            fprintf(stderr, "call %ld failed: %s (HTTP %ld)\n", i, curl_easy_strerror(rc), status);
            return 1;
        }
    }
    elapsed = seconds() - t0;
    printf("%.1f\n", (double)calls / elapsed);
    curl_easy_cleanup(e);
    free(body.data);
    curl_global_cleanup();
    return 0;
}
