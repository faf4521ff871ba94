/* A C program outside wsx using the C API as its users do: a client and a server connection
 * echo one message through memory, then close. Exits 0 when the echo and the close came back. */
#include <stdio.h>
#include <string.h>

#include "capi/wsx.h"

typedef struct endpoint {
    wsx_connection* conn;
    int echo;
    char last[64];
    uint16_t close_code;
} endpoint;

static void on_message(void* user_data, wsx_opcode opcode, const uint8_t* data, size_t size) {
    endpoint* e = (endpoint*)user_data;
    if (size < sizeof e->last) {
        memcpy(e->last, data, size);
        e->last[size] = '\0';
    }
    if (e->echo) wsx_send_text(e->conn, (const char*)data, size);
    (void)opcode;
}

static void on_close(void* user_data, const wsx_close_info* info) {
    ((endpoint*)user_data)->close_code = info->code;
}

static void pump(endpoint* from, endpoint* to) {
    uint8_t chunk[256];
    size_t n;
    while ((n = wsx_take_output(from->conn, chunk, sizeof chunk)) > 0)
        wsx_receive(to->conn, chunk, n, NULL);
}

int main(void) {
    wsx_callbacks callbacks = {0};
    endpoint client = {0};
    endpoint server = {0};
    int ok;
    callbacks.on_message = on_message;
    callbacks.on_close = on_close;
    server.echo = 1;
    if (wsx_connection_create(WSX_ROLE_CLIENT, NULL, &callbacks, &client, &client.conn) != WSX_OK ||
        wsx_connection_create(WSX_ROLE_SERVER, NULL, &callbacks, &server, &server.conn) != WSX_OK)
        return 1;
    wsx_send_text(client.conn, "hello from C", 12);
    pump(&client, &server);
    pump(&server, &client);
    wsx_close(client.conn, 1000, "", 0);
    pump(&client, &server);
    pump(&server, &client);
    ok = strcmp(client.last, "hello from C") == 0 && client.close_code == 1000 &&
         server.close_code == 1000 && strcmp(wsx_version(), WSX_VERSION_STRING) == 0;
    printf("consumer_c: wsx %s, echo %s\n", wsx_version(), ok ? "ok" : "FAILED");
    wsx_connection_destroy(client.conn);
    wsx_connection_destroy(server.conn);
    return ok ? 0 : 1;
}
