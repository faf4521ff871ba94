/* Echo peer for bench/compare: libwebsockets, single-threaded (one service thread, the default),
 * following the minimal-ws-server-echo example: each received message is buffered, and written
 * back from the LWS_CALLBACK_SERVER_WRITEABLE callback (lws_write only when writable), with
 * LWS_PRE bytes of headroom as the library requires. Fragments are reassembled up to 64 MiB.
 * Usage: lws_echo PORT   (binds 127.0.0.1) */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE (64u * 1024u * 1024u)

struct message {
    struct message* next;
    size_t len;
    int binary;
    unsigned char data[]; /* LWS_PRE headroom, then the payload */
};

struct per_session {
    struct message *head, *tail;
    unsigned char* partial; /* a message arriving in fragments, LWS_PRE headroom included */
    size_t partial_len, partial_cap;
};

static int callback_echo(struct lws* wsi, enum lws_callback_reasons reason, void* user, void* in,
                         size_t len) {
    struct per_session* pss = user;
    switch (reason) {
        case LWS_CALLBACK_ESTABLISHED:
            memset(pss, 0, sizeof *pss);
            break;
        case LWS_CALLBACK_RECEIVE: {
            const int first = lws_is_first_fragment(wsi), last = lws_is_final_fragment(wsi);
            if (first) pss->partial_len = 0;
            if (pss->partial_len + len > MAX_MESSAGE) return -1;
            if (first && last) {
                struct message* m = malloc(sizeof *m + LWS_PRE + len);
                if (!m) return -1;
                m->next = NULL;
                m->len = len;
                m->binary = lws_frame_is_binary(wsi);
                memcpy(m->data + LWS_PRE, in, len);
                if (pss->tail)
                    pss->tail->next = m;
                else
                    pss->head = m;
                pss->tail = m;
                lws_callback_on_writable(wsi);
                break;
            }
            if (pss->partial_len + len > pss->partial_cap) {
                size_t cap = pss->partial_cap ? pss->partial_cap : 4096;
                while (cap < pss->partial_len + len)
                    cap *= 2;
                unsigned char* p = realloc(pss->partial, sizeof(struct message) + LWS_PRE + cap);
                if (!p) return -1;
                pss->partial = p;
                pss->partial_cap = cap;
            }
            struct message* m = (struct message*)pss->partial;
            memcpy(m->data + LWS_PRE + pss->partial_len, in, len);
            pss->partial_len += len;
            if (last) {
                m->next = NULL;
                m->len = pss->partial_len;
                m->binary = lws_frame_is_binary(wsi);
                if (pss->tail)
                    pss->tail->next = m;
                else
                    pss->head = m;
                pss->tail = m;
                pss->partial = NULL;
                pss->partial_cap = pss->partial_len = 0;
                lws_callback_on_writable(wsi);
            }
            break;
        }
        case LWS_CALLBACK_SERVER_WRITEABLE: {
            struct message* m = pss->head;
            if (!m) break;
            const int n = lws_write(wsi, m->data + LWS_PRE, m->len,
                                    m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
            if (n < (int)m->len) return -1;
            pss->head = m->next;
            if (!pss->head) pss->tail = NULL;
            free(m);
            if (pss->head) lws_callback_on_writable(wsi);
            break;
        }
        case LWS_CALLBACK_CLOSED:
            while (pss->head) {
                struct message* m = pss->head;
                pss->head = m->next;
                free(m);
            }
            free(pss->partial);
            break;
        default:
            break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"echo", callback_echo, sizeof(struct per_session), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: lws_echo PORT\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = atoi(argv[1]);
    info.iface = "127.0.0.1";
    info.protocols = protocols; /* the first protocol also serves clients that name none */
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.pt_serv_buf_size = 64 * 1024;
    info.count_threads = 1;
    struct lws_context* context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws_echo: cannot start\n");
        return 1;
    }
    fprintf(stderr, "lws_echo: listening on 127.0.0.1:%d\n", info.port);
    while (!interrupted && lws_service(context, 0) >= 0) {
    }
    lws_context_destroy(context);
    return 0;
}
