/*
 * gatewayd plugin contract.
 *
 * A protocol plugin is a shared object that exports exactly one constant
 * descriptor named `gw_plugin`. The core dlopen()s only the plugins that
 * gateway.yaml enables and refuses, naming the file, any whose ABI number or
 * build signature differs from its own.
 *
 * ABI log (fields are only ever appended):
 *   1  first version: conf keys, start/accept/stop, datagram hook, flags.
 *   2  alpn: the protocol ids a plugin speaks on TLS listeners;
 *      drain: the worker has begun to stop.
 */
#ifndef GW_PLUGIN_H
#define GW_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define GW_PLUGIN_ABI 2

/* Pointer size and OpenSSL major version: a plugin built against another
   OpenSSL or for another word size must not be loaded. */
#define GW_BUILD_SIGNATURE ((unsigned)(sizeof(void *) * 1000u + GW_OPENSSL_MAJOR))
#ifndef GW_OPENSSL_MAJOR
#include <openssl/opensslv.h>
#define GW_OPENSSL_MAJOR OPENSSL_VERSION_MAJOR
#endif

struct gw_conn;
struct gw_plugin_ctx;

/* Types of plugin configuration keys. The core parses and range-checks them,
   so every plugin's configuration errors read alike. */
enum gw_conf_type {
    GW_CONF_BOOL,      /* bool */
    GW_CONF_INT,       /* long, within [min, max] */
    GW_CONF_DURATION,  /* long milliseconds; "30s", "5m", "250ms", within [min, max] */
    GW_CONF_SIZE,      /* long bytes; "64k", "10M", within [min, max] */
    GW_CONF_STRING,    /* char * (owned by the core, NULL when absent) */
};

struct gw_conf_key {
    const char *name;        /* key under protocols.<name> in gateway.yaml */
    enum gw_conf_type type;
    size_t offset;           /* offset in the plugin's conf struct */
    const char *def;         /* default as it would be written in YAML, or NULL */
    long min, max;           /* inclusive range for INT/DURATION/SIZE */
    const char *help;        /* one line, shown by gatewayd -t on error */
};
#define GW_CONF_END { NULL, 0, 0, NULL, 0, 0, NULL }

/*
 * The descriptor. Hooks other than accept are optional (NULL).
 *
 *  conf_size/conf_keys: the core allocates conf_size zeroed bytes, fills them
 *     from the keys (defaults first), and hands them to configure() and, via
 *     gw_plugin_conf(), to the session code.
 *  configure: cross-key validation after parsing; returns < 0 and sets
 *     *error_r (static or gw_strdup'ed string) to refuse the configuration.
 *     It runs in the master, before the workers fork, so what it derives
 *     and stores in the conf struct (parsed lists, a random secret) is the
 *     same in every worker.
 *  start/stop: per worker. start() runs before the loop; stop() runs after
 *     the loop has ended and every connection has been closed and freed, so
 *     it may only cancel lookups, destroy timers and free the plugin's own
 *     memory -- never touch a gw_conn.
 *  accept: a client connection was accepted on one of this protocol's
 *     stream listeners. The plugin owns it from now on.
 *  datagram: a datagram arrived on one of this protocol's UDP listeners.
 *     `reply` sends a datagram back to `peer` from the same socket.
 */
struct gw_datagram;
struct gw_plugin {
    unsigned abi;            /* GW_PLUGIN_ABI */
    unsigned signature;      /* GW_BUILD_SIGNATURE */
    const char *name;        /* matches protocols.<name> in gateway.yaml */
    size_t conf_size;
    const struct gw_conf_key *conf_keys;
    int (*configure)(void *conf, const char **error_r);
    int (*start)(struct gw_plugin_ctx *ctx);
    void (*accept)(struct gw_plugin_ctx *ctx, struct gw_conn *client);
    void (*stop)(struct gw_plugin_ctx *ctx);
    void (*datagram)(struct gw_plugin_ctx *ctx, struct gw_datagram *dg);
    unsigned flags;          /* GW_PLUGIN_* */
    /* ALPN (RFC 7301) protocol ids this plugin speaks, comma-separated in
       order of preference ("http/1.1"; "imap"), or NULL. TLS listeners
       select one of them, and refuse a client that offers ALPN but none of
       them (no_application_protocol), as the RFC asks of a server. */
    const char *alpn;
    /* The worker has stopped accepting and is draining (SIGTERM, or a
       reload replacing it), up to shutdown_timeout: close what only waits
       for more work (idle keep-alive connections), let what is in flight
       finish and not ask for more (Connection: close). May be NULL. */
    void (*drain)(struct gw_plugin_ctx *ctx);
};

/* Backends speak first (POP3, IMAP greetings): gw_upstream_connect()
   delivers GW_EV_CONNECTED only once the first bytes of the greeting have
   arrived (within upstream.connect_timeout), and a backend that accepts but
   never greets -- hung, overloaded -- is marked suspect and the next copy
   tried, exactly as for a refused connect. The greeting is then in the
   input buffer: GW_EV_READ follows GW_EV_CONNECTED at once. */
#define GW_PLUGIN_SERVER_FIRST 0x1

/* Mark the descriptor so it is exported from a -fvisibility=hidden build:
     GW_EXPORT const struct gw_plugin gw_plugin = { ... };          */
#define GW_EXPORT __attribute__((visibility("default")))

/* The plugin's parsed configuration (the struct of conf_size bytes). */
const void *gw_plugin_conf(const struct gw_plugin_ctx *ctx);
/* The protocol name this context serves ("pop", "imap", ...). */
const char *gw_plugin_name(const struct gw_plugin_ctx *ctx);
/* Per-worker private data of the plugin; set in start(), freed by the
   plugin in stop(). */
void *gw_plugin_data(const struct gw_plugin_ctx *ctx);
void gw_plugin_set_data(struct gw_plugin_ctx *ctx, void *data);

#endif
