/* A Modbus TCP server built on libmodbus (not pymodbus), for the conformance tests.
 *
 * Usage: server MAP_FILE LOG_FILE
 * Listens on a free port of 127.0.0.1 and prints "listening PORT" once ready. MAP_FILE lines:
 *   map TABLE START COUNT        the table's addresses; libmodbus answers 2 (illegal data address) outside them
 *   hole TABLE ADDRESS           an address inside the map that answers 2, as a map with holes does
 *   reg TABLE ADDRESS WORD       one 16-bit register (holding/input) or bit (coil/discrete) value
 * TABLE: coil, discrete, holding, input. Every request is appended to LOG_FILE as "FC ADDRESS COUNT".
 * Writes are refused with exception 1 (the plant is read-only) and logged like any request.
 */
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HOLES 256
enum { COIL, DISCRETE, HOLDING, INPUT, TABLES };
static const char *NAMES[TABLES] = {"coil", "discrete", "holding", "input"};

static int table_of(const char *name) {
    for (int t = 0; t < TABLES; t++)
        if (strcmp(name, NAMES[t]) == 0) return t;
    fprintf(stderr, "unknown table %s\n", name);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MAP_FILE LOG_FILE\n", argv[0]);
        return 2;
    }
    unsigned start[TABLES] = {0}, count[TABLES] = {0};
    int holes[MAX_HOLES][2], n_holes = 0;
    char line[256], word[32];
    FILE *map = fopen(argv[1], "r");
    if (!map) { perror(argv[1]); return 2; }
    while (fgets(line, sizeof line, map)) {  /* first pass: the mapping's extent and the holes */
        unsigned a, b;
        char table[16];
        if (sscanf(line, "map %15s %u %u", table, &a, &b) == 3) {
            start[table_of(table)] = a;
            count[table_of(table)] = b;
        } else if (sscanf(line, "hole %15s %u", table, &a) == 2 && n_holes < MAX_HOLES) {
            holes[n_holes][0] = table_of(table);
            holes[n_holes++][1] = (int)a;
        }
    }
    modbus_mapping_t *mb = modbus_mapping_new_start_address(
        start[COIL], count[COIL], start[DISCRETE], count[DISCRETE],
        start[HOLDING], count[HOLDING], start[INPUT], count[INPUT]);
    if (!mb) { fprintf(stderr, "mapping: %s\n", modbus_strerror(errno)); return 2; }
    rewind(map);
    while (fgets(line, sizeof line, map)) {  /* second pass: the values */
        unsigned address, value;
        char table[16];
        if (sscanf(line, "reg %15s %u %31s", table, &address, word) == 3) {
            int t = table_of(table);
            value = (unsigned)strtoul(word, NULL, 0);
            if (address < start[t] || address >= start[t] + count[t]) { fprintf(stderr, "outside map: %s", line); return 2; }
            unsigned i = address - start[t];
            if (t == COIL) mb->tab_bits[i] = value ? 1 : 0;
            else if (t == DISCRETE) mb->tab_input_bits[i] = value ? 1 : 0;
            else if (t == HOLDING) mb->tab_registers[i] = (uint16_t)value;
            else mb->tab_input_registers[i] = (uint16_t)value;
        }
    }
    fclose(map);
    FILE *log = fopen(argv[2], "a");
    if (!log) { perror(argv[2]); return 2; }

    modbus_t *ctx = modbus_new_tcp("127.0.0.1", 0);
    int server = modbus_tcp_listen(ctx, 16);
    if (server < 0) { fprintf(stderr, "listen: %s\n", modbus_strerror(errno)); return 2; }
    struct sockaddr_in bound;
    socklen_t size = sizeof bound;
    getsockname(server, (struct sockaddr *)&bound, &size);
    printf("listening %d\n", ntohs(bound.sin_port));
    fflush(stdout);

    fd_set clients;
    FD_ZERO(&clients);
    FD_SET(server, &clients);
    int top = server;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    int header = modbus_get_header_length(ctx);
    for (;;) {
        fd_set ready = clients;
        if (select(top + 1, &ready, NULL, NULL, NULL) < 0) {
            if (errno == EINTR) continue;
            perror("select");
            return 1;
        }
        for (int fd = 0; fd <= top; fd++) {
            if (!FD_ISSET(fd, &ready)) continue;
            if (fd == server) {
                int client = accept(server, NULL, NULL);
                if (client >= 0) {
                    FD_SET(client, &clients);
                    if (client > top) top = client;
                }
                continue;
            }
            modbus_set_socket(ctx, fd);
            int rc = modbus_receive(ctx, query);
            if (rc <= 0) {  /* closed by the client, or a broken frame: drop the connection */
                close(fd);
                FD_CLR(fd, &clients);
                continue;
            }
            int function = query[header];
            int address = (query[header + 1] << 8) | query[header + 2];
            int n = (query[header + 3] << 8) | query[header + 4];
            fprintf(log, "%d %d %d\n", function, address, n);
            fflush(log);
            if (function > 4) {
                modbus_reply_exception(ctx, query, MODBUS_EXCEPTION_ILLEGAL_FUNCTION);
                continue;
            }
            int table = function == 1 ? COIL : function == 2 ? DISCRETE : function == 3 ? HOLDING : INPUT;
            int refused = 0;
            for (int h = 0; h < n_holes; h++)
                if (holes[h][0] == table && holes[h][1] >= address && holes[h][1] < address + n) refused = 1;
            if (refused) modbus_reply_exception(ctx, query, MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS);
            else modbus_reply(ctx, query, rc, mb);
        }
    }
}
