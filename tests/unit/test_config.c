/*
 * The gateway.yaml loader: the scalar parsers, a complete valid file, the
 * defaults, plugin loading (and refusal), and one table row per class of
 * error with the exact "FILE:LINE:COL: message" it must produce.
 *
 * Files are written to a private temporary directory. Placeholders in the
 * YAML and in expected messages:
 *   @FILE@      the gateway.yaml written      @DIR@       its directory
 *   @PLUGINDIR@ where the test plugins are    @PLUGIN@    the dummy plugin
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "config.h"
#include "test_plugin.h"

static char tmpdir[] = "/tmp/gw-test-config-XXXXXX";
static char conf_file[PATH_MAX];
static char plugin_dir[PATH_MAX];

/* ---- helpers -------------------------------------------------------- */

static void pathf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < size);
}

static void write_file(const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    pathf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* Replace every placeholder; malloc'ed result. */
static char *subst(const char *in)
{
    static const char *const names[] = {"@FILE@", "@DIR@", "@PLUGINDIR@", "@PLUGIN@"};
    const char *values[] = {conf_file, tmpdir, plugin_dir, DUMMY_PLUGIN};
    size_t cap = strlen(in) * 4 + 4 * PATH_MAX, len = 0;
    char *out = malloc(cap);

    assert_non_null(out);
    while (*in != '\0') {
        size_t i;

        for (i = 0; i < 4; i++) {
            size_t n = strlen(names[i]);

            if (strncmp(in, names[i], n) == 0) {
                size_t vlen = strlen(values[i]);

                assert_true(len + vlen < cap);
                memcpy(out + len, values[i], vlen);
                len += vlen;
                in += n;
                break;
            }
        }
        if (i == 4) {
            assert_true(len + 1 < cap);
            out[len++] = *in++;
        }
    }
    out[len] = '\0';
    return out;
}

static int load(const char *yaml, struct gw_config **conf_r, char **errors_r)
{
    char *text = subst(yaml);
    int ret;

    write_file("gateway.yaml", text);
    free(text);
    ret = gw_config_load(conf_file, conf_r, errors_r);
    assert_true(ret == 0 ? *conf_r != NULL && *errors_r == NULL
                         : *conf_r == NULL && *errors_r != NULL);
    return ret;
}

static struct gw_config *load_ok(const char *yaml)
{
    struct gw_config *conf;
    char *errors;

    if (load(yaml, &conf, &errors) < 0) {
        print_error("unexpected errors:\n%s\n", errors);
        free(errors);
        fail();
    }
    return conf;
}

static size_t count_lines(const char *s)
{
    size_t n = s[0] != '\0';

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Whether some line of `errors` starts with `expect` (placeholders
   substituted); says what was there when not. */
static bool has_error_line(const char *errors, const char *expect_raw)
{
    char *expect = subst(expect_raw);
    size_t n = strlen(expect);
    const char *line = errors;
    bool found = false;

    while (line != NULL && *line != '\0' && !found) {
        const char *nl = strchr(line, '\n');

        found = strncmp(line, expect, n) == 0 && (nl == NULL || (size_t)(nl - line) >= n);
        line = nl != NULL ? nl + 1 : NULL;
    }
    if (!found)
        print_error("expected an error line starting with:\n  %s\ngot:\n%s\n", expect, errors);
    free(expect);
    return found;
}

static void assert_error_line(const char *errors, const char *expect)
{
    if (!has_error_line(errors, expect))
        fail();
}

static bool load_fails_with(const char *yaml, const char *expect)
{
    struct gw_config *conf;
    char *errors;
    bool ok;

    if (load(yaml, &conf, &errors) == 0) {
        gw_config_free(&conf);
        print_error("config was accepted, expected: %s\n", expect);
        return false;
    }
    ok = has_error_line(errors, expect);
    free(errors);
    return ok;
}

/* ---- scalar parsers ------------------------------------------------- */

static void test_parse_duration(void **state)
{
    static const struct {
        const char *in;
        int ret;
        long ms;
    } cases[] = {
        {"250ms", 0, 250}, {"30s", 0, 30000}, {"5m", 0, 300000}, {"1h", 0, 3600000},
        {"2d", 0, 172800000}, {"10", 0, 10000}, {"0", 0, 0}, {"0ms", 0, 0},
        {"", -1, 0}, {"s", -1, 0}, {"10x", -1, 0}, {"-5s", -1, 0}, {"1.5s", -1, 0},
        {" 5s", -1, 0}, {"5s ", -1, 0}, {"5 s", -1, 0}, {"5S", -1, 0}, {"1h30m", -1, 0},
        {"99999999999999999999", -1, 0}, {"9223372036854775807d", -1, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long ms = -42;
        int ret = gw_parse_duration(cases[i].in, &ms);

        if (ret != cases[i].ret || (ret == 0 && ms != cases[i].ms)) {
            print_error("gw_parse_duration(\"%s\") = %d, %ld\n", cases[i].in, ret, ms);
            fail();
        }
    }
}

static void test_parse_size(void **state)
{
    static const struct {
        const char *in;
        int ret;
        long bytes;
    } cases[] = {
        {"512", 0, 512}, {"64k", 0, 65536}, {"64K", 0, 65536}, {"10M", 0, 10485760},
        {"10m", 0, 10485760}, {"1G", 0, 1073741824L}, {"0", 0, 0},
        {"", -1, 0}, {"k", -1, 0}, {"1T", -1, 0}, {"1kb", -1, 0}, {"-1", -1, 0},
        {"1.5M", -1, 0}, {"9223372036854775807G", -1, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long bytes = -42;
        int ret = gw_parse_size(cases[i].in, &bytes);

        if (ret != cases[i].ret || (ret == 0 && bytes != cases[i].bytes)) {
            print_error("gw_parse_size(\"%s\") = %d, %ld\n", cases[i].in, ret, bytes);
            fail();
        }
    }
}

static void test_parse_address(void **state)
{
    static const struct {
        const char *in;
        int ret;
        int family;
        const char *addr;
        unsigned port;
    } cases[] = {
        {"127.0.0.1:110", 0, AF_INET, "127.0.0.1", 110},
        {"*:995", 0, AF_INET, "0.0.0.0", 995},
        {"0.0.0.0:1", 0, AF_INET, "0.0.0.0", 1},
        {"[::1]:110", 0, AF_INET6, "::1", 110},
        {"[::]:65535", 0, AF_INET6, "::", 65535},
        {"[2001:db8::5]:143", 0, AF_INET6, "2001:db8::5", 143},
        {"127.0.0.1", -1, 0, NULL, 0},
        {"127.0.0.1:", -1, 0, NULL, 0},
        {"127.0.0.1:0", -1, 0, NULL, 0},
        {"127.0.0.1:65536", -1, 0, NULL, 0},
        {"127.0.0.1:-1", -1, 0, NULL, 0},
        {"127.0.0.1:11x", -1, 0, NULL, 0},
        {":110", -1, 0, NULL, 0},
        {"::1:110", -1, 0, NULL, 0},
        {"[::1]110", -1, 0, NULL, 0},
        {"[::1:110", -1, 0, NULL, 0},
        {"[]:110", -1, 0, NULL, 0},
        {"[127.0.0.1]:110", -1, 0, NULL, 0},
        {"[*]:110", -1, 0, NULL, 0},
        {"localhost:110", -1, 0, NULL, 0},
        {"256.0.0.1:110", -1, 0, NULL, 0},
        {"", -1, 0, NULL, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        char text[INET6_ADDRSTRLEN];
        int ret = gw_parse_address(cases[i].in, &ss, &len);

        if (ret != cases[i].ret) {
            print_error("gw_parse_address(\"%s\") = %d\n", cases[i].in, ret);
            fail();
        }
        if (ret < 0)
            continue;
        assert_int_equal(ss.ss_family, cases[i].family);
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)&ss;

            assert_int_equal(len, sizeof(*sin));
            assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
            assert_int_equal(ntohs(sin->sin_port), cases[i].port);
        } else {
            const struct sockaddr_in6 *sin6 = (const void *)&ss;

            assert_int_equal(len, sizeof(*sin6));
            assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
            assert_int_equal(ntohs(sin6->sin6_port), cases[i].port);
        }
        assert_string_equal(text, cases[i].addr);
    }
}

/* ---- valid files ---------------------------------------------------- */

static const char full_yaml[] =
    "workers: 4\n"
    "plugin_dir: @PLUGINDIR@\n"
    "log_level: debug\n"
    "shutdown_timeout: 30s\n"
    "local_site: site-a\n"
    "auth:\n"
    "  failure_delay: 500ms\n"
    "  cache_ttl: 1h\n"
    "  negative_ttl: 1m\n"
    "  cache_size: 500\n"
    "upstream:\n"
    "  connect_timeout: 2s\n"
    "  retries: 3\n"
    "  verify: false\n"
    "  ca_file: ca.pem\n"
    "sites:\n"
    "  site-a: {}\n"
    "  site-b:\n"
    "    external_url: https://b.example.com\n"
    "directory:\n"
    "  source: static\n"
    "  users:\n"
    "    alice:\n"
    "      password: \"$6$salt$abcdef\"\n"
    "      database: db1\n"
    "    bob:\n"
    "      password: \"$y$j9T$salt$hash\"\n"
    "      database: db2\n"
    "      version: 14\n"
    "      site: site-b\n"
    "      sip_uri: bob\n"
    "      extension: 1002\n"
    "      disabled: true\n"
    "locator:\n"
    "  source: static\n"
    "  servers:\n"
    "    mbx1:\n"
    "      address: 127.0.0.1\n"
    "      site: site-a\n"
    "      services:\n"
    "        dummy: { port: 11110 }\n"
    "        imap: { port: 993, tls: implicit, sni: mbx1.example.com }\n"
    "    mbx2:\n"
    "      address: mbx2.example.com\n"
    "      site: site-b\n"
    "      drain: true\n"
    "  databases:\n"
    "    db1: { copies: [mbx1, mbx2] }\n"
    "    db2:\n"
    "      copies: [mbx2, mbx1]\n"
    "      active: mbx1\n"
    "protocols:\n"
    "  dummy:\n"
    "    listen:\n"
    "      - address: 127.0.0.1:1110\n"
    "        allow_plaintext: true\n"
    "        max_connections: 100\n"
    "      - address: \"[::1]:1995\"\n"
    "        tls: implicit\n"
    "        tls_min_version: 1.3\n"
    "        ciphers: HIGH\n"
    "        certificates:\n"
    "          - { cert: cert.pem, key: key.pem }\n"
    "          - cert: @DIR@/cert2.pem\n"
    "            key: key.pem\n"
    "        require_client_cert: true\n"
    "        client_ca_file: ca.pem\n"
    "      - address: \"*:1110\"\n"
    "        transport: udp\n"
    "    idle_timeout: 2h\n"
    "    flag: yes\n"
    "    count: 7\n"
    "    login_timeout: 90s\n"
    "    max_line: 16k\n"
    "    greeting: welcome\n"
    "    banner: hi there\n"
    "  pop:\n"
    "    enabled: false\n"
    "    plugin: /nonexistent/pop.so\n"
    "    anything: goes\n";

static void test_full_config(void **state)
{
    struct gw_config *conf;
    const struct gw_conf_protocol *p;
    const struct gw_conf_listener *l;
    const struct dummy_conf *dc;
    const struct gw_conf_server *srv;
    const struct gw_conf_service *svc;
    const struct gw_conf_database *db;
    const struct gw_conf_site *site;
    char path[PATH_MAX];

    (void)state;
    conf = load_ok(full_yaml);
    assert_string_equal(conf->file, conf_file);
    assert_int_equal(conf->workers, 4);
    assert_string_equal(conf->plugin_dir, plugin_dir);
    assert_int_equal(conf->log_level, GW_LOG_DEBUG);
    assert_int_equal(conf->shutdown_timeout, 30000);
    assert_string_equal(conf->local_site, "site-a");
    assert_int_equal(conf->auth_failure_delay, 500);
    assert_int_equal(conf->auth_cache_ttl, 3600000);
    assert_int_equal(conf->auth_negative_ttl, 60000);
    assert_int_equal(conf->auth_cache_size, 500);
    assert_int_equal(conf->connect_timeout, 2000);
    assert_int_equal(conf->connect_retries, 3);
    assert_false(conf->upstream_verify);
    pathf(path, sizeof(path), "%s/ca.pem", tmpdir);
    assert_string_equal(conf->upstream_ca_file, path);

    /* sites */
    assert_int_equal(conf->nsites, 2);
    site = gw_config_site(conf, "site-a");
    assert_non_null(site);
    assert_null(site->external_url);
    site = gw_config_site(conf, "site-b");
    assert_non_null(site);
    assert_string_equal(site->external_url, "https://b.example.com");
    assert_null(gw_config_site(conf, "site-c"));

    /* directory */
    assert_int_equal(conf->dir_source, GW_DIR_STATIC);
    assert_int_equal(conf->nusers, 2);
    assert_string_equal(conf->users[0].name, "alice");
    assert_string_equal(conf->users[0].password_hash, "$6$salt$abcdef");
    assert_string_equal(conf->users[0].database, "db1");
    assert_int_equal(conf->users[0].version, 15);
    assert_null(conf->users[0].site);
    assert_null(conf->users[0].sip_uri);
    assert_false(conf->users[0].disabled);
    assert_int_equal(conf->users[0].pos.line, 23);
    assert_int_equal(conf->users[0].pos.col, 5);
    assert_string_equal(conf->users[1].name, "bob");
    assert_int_equal(conf->users[1].version, 14);
    assert_string_equal(conf->users[1].site, "site-b");
    assert_string_equal(conf->users[1].sip_uri, "bob");
    assert_string_equal(conf->users[1].extension, "1002");
    assert_true(conf->users[1].disabled);

    /* locator */
    assert_int_equal(conf->loc_source, GW_LOC_STATIC);
    assert_int_equal(conf->nservers, 2);
    srv = gw_config_server(conf, "mbx1");
    assert_non_null(srv);
    assert_string_equal(srv->address, "127.0.0.1");
    assert_string_equal(srv->site, "site-a");
    assert_false(srv->drain);
    assert_int_equal(srv->nservices, 2);
    svc = gw_config_service(srv, "dummy");
    assert_non_null(svc);
    assert_int_equal(svc->port, 11110);
    assert_int_equal(svc->tls, GW_TLS_NONE);
    assert_null(svc->sni);
    svc = gw_config_service(srv, "imap");
    assert_non_null(svc);
    assert_int_equal(svc->port, 993);
    assert_int_equal(svc->tls, GW_TLS_IMPLICIT);
    assert_string_equal(svc->sni, "mbx1.example.com");
    assert_null(gw_config_service(srv, "pop"));
    srv = gw_config_server(conf, "mbx2");
    assert_non_null(srv);
    assert_true(srv->drain);
    assert_int_equal(srv->nservices, 0);
    assert_null(gw_config_server(conf, "mbx3"));
    db = gw_config_database(conf, "db1");
    assert_non_null(db);
    assert_int_equal(db->ncopies, 2);
    assert_string_equal(db->copies[0], "mbx1");
    assert_string_equal(db->copies[1], "mbx2");
    assert_string_equal(db->active, "mbx1");
    db = gw_config_database(conf, "db2");
    assert_non_null(db);
    assert_string_equal(db->copies[0], "mbx2");
    assert_string_equal(db->active, "mbx1");
    assert_null(gw_config_database(conf, "db3"));

    /* protocols: pop is disabled and so not even loaded */
    assert_int_equal(conf->nprotocols, 1);
    p = &conf->protocols[0];
    assert_string_equal(p->name, "dummy");
    pathf(path, sizeof(path), "%s/dummy.so", plugin_dir);
    assert_string_equal(p->plugin_path, path);
    assert_non_null(p->plugin);
    assert_non_null(p->dl_handle);
    assert_string_equal(p->plugin->name, "dummy");
    assert_int_equal(p->idle_timeout, 7200000);
    assert_int_equal(p->nlisteners, 3);

    l = &p->listeners[0];
    assert_string_equal(l->address, "127.0.0.1:1110");
    assert_int_equal(l->addr.ss_family, AF_INET);
    assert_false(l->udp);
    assert_int_equal(l->tls, GW_TLS_NONE);
    assert_true(l->allow_plaintext);
    assert_int_equal(l->max_connections, 100);
    assert_string_equal(l->tls_min_version, "1.2");
    assert_null(l->ciphers);
    assert_int_equal(l->ncerts, 0);

    l = &p->listeners[1];
    assert_int_equal(l->addr.ss_family, AF_INET6);
    assert_int_equal(l->tls, GW_TLS_IMPLICIT);
    assert_false(l->allow_plaintext);
    assert_string_equal(l->tls_min_version, "1.3");
    assert_string_equal(l->ciphers, "HIGH");
    assert_int_equal(l->ncerts, 2);
    pathf(path, sizeof(path), "%s/cert.pem", tmpdir);
    assert_string_equal(l->certs[0].cert_file, path);
    pathf(path, sizeof(path), "%s/key.pem", tmpdir);
    assert_string_equal(l->certs[0].key_file, path);
    pathf(path, sizeof(path), "%s/cert2.pem", tmpdir);
    assert_string_equal(l->certs[1].cert_file, path);
    assert_true(l->require_client_cert);
    pathf(path, sizeof(path), "%s/ca.pem", tmpdir);
    assert_string_equal(l->client_ca_file, path);

    l = &p->listeners[2];
    assert_true(l->udp);
    assert_int_equal(l->addr.ss_family, AF_INET);
    assert_int_equal(l->pos.line, 68);
    assert_int_equal(l->pos.col, 9);

    dc = p->plugin_conf;
    assert_non_null(dc);
    assert_true(dc->flag);
    assert_int_equal(dc->count, 7);
    assert_int_equal(dc->login_timeout, 90000);
    assert_int_equal(dc->max_line, 16384);
    assert_string_equal(dc->greeting, "welcome");
    assert_string_equal(dc->banner, "hi there");
    assert_int_equal(dc->idle_timeout, 7200000); /* shared with the core */

    gw_config_free(&conf);
    assert_null(conf);
    gw_config_free(&conf); /* NULL is fine */
}

static void test_defaults(void **state)
{
    struct gw_config *conf;
    const struct gw_conf_listener *l;
    const struct dummy_conf *dc;

    (void)state;
    conf = load_ok("plugin_dir: @PLUGINDIR@\n"
                   "locator:\n"
                   "  servers:\n"
                   "    mbx1: { address: 127.0.0.1 }\n"
                   "  databases:\n"
                   "    db1: { copies: [mbx1] }\n"
                   "directory:\n"
                   "  users:\n"
                   "    alice: { password: \"$5$s$h\", database: db1 }\n"
                   "sites:\n"
                   "  quiet:\n"
                   "protocols:\n"
                   "  dummy:\n"
                   "    listen:\n"
                   "      - address: 127.0.0.1:1110\n");
    assert_int_equal(conf->workers, 0);
    assert_int_equal(conf->log_level, GW_LOG_INFO);
    assert_int_equal(conf->shutdown_timeout, 10000);
    assert_null(conf->local_site);
    assert_int_equal(conf->auth_failure_delay, 2000);
    assert_int_equal(conf->auth_cache_ttl, 300000);
    assert_int_equal(conf->auth_negative_ttl, 30000);
    assert_int_equal(conf->auth_cache_size, 10000);
    assert_int_equal(conf->connect_timeout, 5000);
    assert_int_equal(conf->connect_retries, 1);
    assert_true(conf->upstream_verify);
    assert_null(conf->upstream_ca_file);
    assert_int_equal(conf->nsites, 1);
    assert_int_equal(conf->users[0].version, 15);
    assert_string_equal(conf->databases[0].active, "mbx1");
    assert_int_equal(conf->protocols[0].idle_timeout, 600000);
    l = &conf->protocols[0].listeners[0];
    assert_false(l->udp);
    assert_int_equal(l->tls, GW_TLS_NONE);
    assert_false(l->allow_plaintext);
    assert_int_equal(l->max_connections, 0);
    assert_string_equal(l->tls_min_version, "1.2");
    assert_false(l->require_client_cert);
    assert_null(l->client_ca_file);

    /* the plugin's defaults, parsed from its key table */
    dc = conf->protocols[0].plugin_conf;
    assert_false(dc->flag);
    assert_int_equal(dc->count, 3);
    assert_int_equal(dc->login_timeout, 30000);
    assert_int_equal(dc->max_line, 8192);
    assert_string_equal(dc->greeting, "hello");
    assert_null(dc->banner);
    assert_int_equal(dc->idle_timeout, 600000);
    gw_config_free(&conf);

    /* workers: auto, and the example's plugin_dir default */
    conf = load_ok("workers: auto\n"
                   "protocols:\n"
                   "  dummy:\n"
                   "    plugin: @PLUGIN@\n"
                   "    listen: [{ address: \"[::]:1110\" }]\n");
    assert_int_equal(conf->workers, 0);
    assert_string_equal(conf->plugin_dir, GW_PLUGIN_DIR_DEFAULT);
    assert_string_equal(conf->protocols[0].plugin_path, DUMMY_PLUGIN);
    assert_int_equal(conf->nusers, 0);
    gw_config_free(&conf);
}

/* plugin: forms, and relative paths against the file's directory. */
static void test_plugin_paths(void **state)
{
    struct gw_config *conf;
    char path[PATH_MAX];

    (void)state;
    pathf(path, sizeof(path), "%s/plugins", tmpdir);
    assert_int_equal(symlink(plugin_dir, path), 0);

    /* plugin_dir relative to the file; default <plugin_dir>/<name>.so */
    conf = load_ok("plugin_dir: plugins\n"
                   "protocols:\n"
                   "  dummy:\n"
                   "    listen: [{ address: 127.0.0.1:1110 }]\n");
    assert_string_equal(conf->plugin_dir, path);
    pathf(path, sizeof(path), "%s/plugins/dummy.so", tmpdir);
    assert_string_equal(conf->protocols[0].plugin_path, path);
    gw_config_free(&conf);

    /* a name without '/' is <plugin_dir>/<name>.so */
    conf = load_ok("plugin_dir: plugins\n"
                   "protocols:\n"
                   "  dummy:\n"
                   "    plugin: dummy\n"
                   "    listen: [{ address: 127.0.0.1:1110 }]\n");
    assert_string_equal(conf->protocols[0].plugin_path, path);
    gw_config_free(&conf);

    /* a relative path with '/' is relative to the file */
    conf = load_ok("protocols:\n"
                   "  dummy:\n"
                   "    plugin: plugins/dummy.so\n"
                   "    listen: [{ address: 127.0.0.1:1110 }]\n");
    assert_string_equal(conf->protocols[0].plugin_path, path);
    gw_config_free(&conf);

    pathf(path, sizeof(path), "%s/plugins", tmpdir);
    assert_int_equal(unlink(path), 0);
}

static void test_no_plugins_flag(void **state)
{
    static const char yaml[] = "protocols:\n"
                               "  pop:\n"
                               "    listen: [{ address: 127.0.0.1:110 }]\n"
                               "    login_timeout: 60s\n"
                               "    whatever: 1\n";
    struct gw_config *conf;
    char *errors;

    (void)state;
    assert_int_equal(gw_config_parse("mem.yaml", yaml, sizeof(yaml) - 1, GW_CONFIG_NO_PLUGINS,
                                     &conf, &errors), 0);
    assert_null(errors);
    assert_int_equal(conf->nprotocols, 1);
    assert_null(conf->protocols[0].plugin);
    assert_null(conf->protocols[0].plugin_conf);
    assert_string_equal(conf->protocols[0].plugin_path, GW_PLUGIN_DIR_DEFAULT "/pop.so");
    gw_config_free(&conf);

    /* without the flag the plugin is required */
    assert_int_equal(gw_config_parse("mem.yaml", yaml, sizeof(yaml) - 1, 0, &conf, &errors), -1);
    assert_null(conf);
    assert_non_null(strstr(errors, "mem.yaml:2:3: protocols.pop: plugin " GW_PLUGIN_DIR_DEFAULT
                                   "/pop.so: cannot load:"));
    free(errors);
}

/* Two listeners on one address and port are fine on different transports. */
static void test_listen_same_port_other_transport(void **state)
{
    struct gw_config *conf;

    (void)state;
    conf = load_ok("protocols:\n"
                   "  dummy:\n"
                   "    plugin: @PLUGIN@\n"
                   "    listen:\n"
                   "      - address: 127.0.0.1:5060\n"
                   "      - address: 127.0.0.1:5060\n"
                   "        transport: udp\n"
                   "      - address: \"[::1]:5060\"\n");
    assert_int_equal(conf->protocols[0].nlisteners, 3);
    gw_config_free(&conf);
}

/* ---- errors: one row per class -------------------------------------- */

/* Lines 1-21; rows append from line 22. The file ends inside the listen
   list, so an appended line indented by 6 ("      - ...") adds a listener,
   by 4 a key of protocols.dummy, by 2 a protocol, by 0 a top-level key. */
#define BASE                                   \
    "plugin_dir: @PLUGINDIR@\n"                \
    "sites:\n"                                 \
    "  site-a: {}\n"                           \
    "locator:\n"                               \
    "  servers:\n"                             \
    "    mbx1:\n"                              \
    "      address: 127.0.0.1\n"               \
    "      site: site-a\n"                     \
    "      services:\n"                        \
    "        dummy: { port: 1110 }\n"          \
    "  databases:\n"                           \
    "    db1: { copies: [mbx1] }\n"            \
    "directory:\n"                             \
    "  users:\n"                               \
    "    alice:\n"                             \
    "      password: \"$6$salt$hash\"\n"       \
    "      database: db1\n"                    \
    "protocols:\n"                             \
    "  dummy:\n"                               \
    "    listen:\n"                            \
    "      - address: 127.0.0.1:1110\n"

/* A protocols section to end documents whose errors are above it. */
#define PROTOCOLS                              \
    "protocols:\n"                             \
    "  dummy:\n"                               \
    "    plugin: @PLUGIN@\n"                   \
    "    listen:\n"                            \
    "      - address: 127.0.0.1:1110\n"

static const struct error_case {
    const char *name;
    const char *yaml;
    const char *expect;
} error_cases[] = {
    /* unknown keys */
    {"unknown top-level key", BASE "bogus: 1\n", "@FILE@:22:1: unknown top-level key 'bogus'"},
    {"unknown plugin key", BASE "    bogus: 1\n",
     "@FILE@:22:5: unknown key 'bogus' in protocols.dummy"},
    {"unknown listener key", BASE "        backlog: 5\n",
     "@FILE@:22:9: unknown key 'backlog' in protocols.dummy.listen[0]"},
    {"unknown auth key", BASE "auth:\n  cache: 5\n", "@FILE@:23:3: unknown key 'cache' in auth"},
    {"unknown user key",
     "directory:\n  users:\n    bob: { password: \"$6$a$b\", database: db1, mail: x }\n",
     "@FILE@:3:47: unknown key 'mail' in directory.users.bob"},
    {"duplicate key", BASE "    count: 5\n    count: 6\n",
     "@FILE@:23:5: duplicate key 'count' in protocols.dummy"},
    {"duplicate top-level key", BASE "plugin_dir: /x\n",
     "@FILE@:22:1: duplicate top-level key 'plugin_dir'"},

    /* wrong types */
    {"list for an integer", BASE "    count: [1, 2]\n",
     "@FILE@:22:12: protocols.dummy.count: expected an integer, got a list"},
    {"list for a section", BASE "upstream: [1]\n",
     "@FILE@:22:11: upstream: expected a mapping, got a list"},
    {"mapping for a string", BASE "    greeting: { a: b }\n",
     "@FILE@:22:15: protocols.dummy.greeting: expected a string, got a mapping"},
    {"null for a bool", BASE "    flag:\n",
     "@FILE@:22:10: protocols.dummy.flag: expected true or false, got null"},
    {"bad bool", BASE "    flag: maybe\n",
     "@FILE@:22:11: protocols.dummy.flag: expected true or false, got 'maybe'"},
    {"bad integer", BASE "upstream:\n  retries: two\n",
     "@FILE@:23:12: upstream.retries: expected an integer, got 'two'"},
    {"listen not a list", BASE "  other:\n    listen: 127.0.0.1:1\n",
     "@FILE@:23:13: protocols.other.listen: expected a list, got a string"},
    {"top level not a mapping", "- a\n- b\n", "@FILE@:1:1: top level: expected a mapping, got a list"},
    {"bad enum", BASE "log_level: loud\n",
     "@FILE@:22:12: log_level: must be one of error, warn, info, debug, got 'loud'"},
    {"bad tls mode", BASE "        tls: ssl\n",
     "@FILE@:22:14: protocols.dummy.listen[0].tls: must be one of none, starttls, implicit, got "
     "'ssl'"},

    /* durations, sizes, ranges */
    {"bad duration", BASE "    login_timeout: 10x\n",
     "@FILE@:22:20: protocols.dummy.login_timeout: invalid duration '10x' (expected e.g. 250ms, "
     "30s, 5m, 1h, 2d)"},
    {"bad core duration", BASE "auth:\n  cache_ttl: 5 minutes\n",
     "@FILE@:23:14: auth.cache_ttl: invalid duration '5 minutes'"},
    {"bad size", BASE "    max_line: 1T\n",
     "@FILE@:22:15: protocols.dummy.max_line: invalid size '1T' (expected e.g. 512, 64k, 10M, "
     "1G)"},
    {"duration out of range", BASE "    login_timeout: 2h\n",
     "@FILE@:22:20: protocols.dummy.login_timeout: must be between 1s and 1h"},
    {"size out of range", BASE "    max_line: 2M\n",
     "@FILE@:22:15: protocols.dummy.max_line: must be between 512 and 1M"},
    {"int out of range", BASE "    count: 500\n",
     "@FILE@:22:12: protocols.dummy.count: must be between 1 and 100"},
    {"shared key out of range", BASE "    idle_timeout: 500ms\n",
     "@FILE@:22:19: protocols.dummy.idle_timeout: must be between 1s and 1d"},
    {"workers out of range", BASE "workers: 65\n",
     "@FILE@:22:10: workers: must be between 1 and 64"},
    {"retries out of range", BASE "upstream:\n  retries: 9\n",
     "@FILE@:23:12: upstream.retries: must be between 0 and 8"},
    {"port out of range",
     "locator:\n  servers:\n    m: { address: a, services: { pop: { port: 70000 } } }\n",
     "@FILE@:3:47: locator.servers.m.services.pop.port: must be between 1 and 65535"},
    {"missing port", "locator:\n  servers:\n    m:\n      address: a\n      services:\n"
                     "        pop: { tls: none }\n",
     "@FILE@:6:9: locator.servers.m.services.pop: missing required key 'port'"},

    /* plugins */
    {"missing plugin", BASE "  pop:\n    listen: [{ address: 127.0.0.1:1111 }]\n",
     "@FILE@:22:3: protocols.pop: plugin @PLUGINDIR@/pop.so: cannot load: "},
    {"plugin ABI refused",
     BASE "  dummy2:\n    plugin: dummy_bad_abi\n    listen: [{ address: 127.0.0.1:1111 }]\n",
     "@FILE@:22:3: protocols.dummy2: plugin @PLUGINDIR@/dummy_bad_abi.so: ABI 3, gatewayd "
     "expects 2"},
    {"plugin without descriptor",
     BASE "  dummy2:\n    plugin: dummy_no_desc\n    listen: [{ address: 127.0.0.1:1111 }]\n",
     "@FILE@:22:3: protocols.dummy2: plugin @PLUGINDIR@/dummy_no_desc.so: no gw_plugin "
     "descriptor (not a gatewayd plugin)"},
    {"plugin name mismatch",
     BASE "  other:\n    plugin: dummy\n    listen: [{ address: 127.0.0.1:1111 }]\n",
     "@FILE@:22:3: protocols.other: plugin @PLUGINDIR@/dummy.so: implements protocol \"dummy\", "
     "configured as \"other\""},
    {"plugin configure refuses", BASE "    flag: true\n    greeting: forbidden\n",
     "@FILE@:19:3: protocols.dummy: greeting 'forbidden' is not allowed with flag"},
    {"empty plugin", BASE "    plugin: \"\"\n",
     "@FILE@:22:13: protocols.dummy.plugin: must not be empty"},
    {"bad protocol name", BASE "  Pop3!:\n    listen: []\n",
     "@FILE@:22:3: protocols: invalid protocol name 'Pop3!'"},

    /* listeners */
    {"bad address port", BASE "      - address: 127.0.0.1:99999\n",
     "@FILE@:22:18: protocols.dummy.listen[1].address: bad address '127.0.0.1:99999' (expected "
     "IPv4:port, [IPv6]:port or *:port)"},
    {"bad address v6 without brackets", BASE "      - address: \"::1:110\"\n",
     "@FILE@:22:18: protocols.dummy.listen[1].address: bad address '::1:110'"},
    {"bad address host name", BASE "      - address: localhost:110\n",
     "@FILE@:22:18: protocols.dummy.listen[1].address: bad address 'localhost:110'"},
    {"listener without address", BASE "      - transport: tcp\n",
     "@FILE@:22:9: protocols.dummy.listen[1]: missing required key 'address'"},
    {"duplicate listen address", BASE "      - address: 127.0.0.1:1110\n",
     "@FILE@:22:9: protocols.dummy.listen[1]: 127.0.0.1:1110/tcp is already used by "
     "protocols.dummy.listen[0]"},
    {"duplicate listen address, wildcard spelling",
     "protocols:\n  dummy:\n    plugin: @PLUGIN@\n    listen:\n"
     "      - address: \"*:1110\"\n      - address: 0.0.0.0:1110\n",
     "@FILE@:6:9: protocols.dummy.listen[1]: 0.0.0.0:1110/tcp is already used by "
     "protocols.dummy.listen[0]"},
    {"tls without certificates", BASE "      - address: 127.0.0.1:1995\n        tls: implicit\n",
     "@FILE@:22:9: protocols.dummy.listen[1]: tls: implicit needs at least one entry in "
     "certificates"},
    {"unreadable certificate",
     BASE "      - address: 127.0.0.1:1995\n        tls: starttls\n        certificates:\n"
          "          - { cert: missing.pem, key: key.pem }\n",
     "@FILE@:25:21: protocols.dummy.listen[1].certificates[0].cert: unreadable certificate "
     "'@DIR@/missing.pem': No such file or directory"},
    {"unreadable key",
     BASE "      - address: 127.0.0.1:1995\n        tls: starttls\n        certificates:\n"
          "          - cert: cert.pem\n            key: /nonexistent/key.pem\n",
     "@FILE@:26:18: protocols.dummy.listen[1].certificates[0].key: unreadable private key "
     "'/nonexistent/key.pem': No such file or directory"},
    {"certificate without key",
     BASE "      - address: 127.0.0.1:1995\n        tls: starttls\n        certificates:\n"
          "          - cert: cert.pem\n",
     "@FILE@:25:13: protocols.dummy.listen[1].certificates[0]: missing required key 'key'"},
    {"tls on udp", BASE "      - address: 127.0.0.1:5060\n        transport: udp\n"
                        "        tls: implicit\n",
     "@FILE@:24:14: protocols.dummy.listen[1].tls: TLS is not available on udp listeners"},
    {"client cert without CA", BASE "        require_client_cert: true\n",
     "@FILE@:22:30: protocols.dummy.listen[0].require_client_cert: needs client_ca_file"},
    {"bad tls_min_version", BASE "        tls_min_version: 1.1\n",
     "@FILE@:22:26: protocols.dummy.listen[0].tls_min_version: must be one of 1.2, 1.3, got "
     "'1.1'"},
    {"protocol without listeners", BASE "  other:\n    plugin: dummy\n",
     "@FILE@:22:3: protocols.other: no listen addresses (listen: is missing)"},
    {"protocol with empty listen", BASE "  other:\n    listen: []\n",
     "@FILE@:23:13: protocols.other: no listen addresses (listen: is empty)"},
    {"no protocol enabled", "protocols:\n  dummy:\n    enabled: false\n",
     "@FILE@:2:3: protocols: no protocol is enabled"},
    {"no protocols at all", "workers: 1\n", "@FILE@:1:1: protocols: no protocol is enabled"},

    /* locator */
    {"database with no copies",
     "locator:\n  servers:\n    m: { address: a }\n  databases:\n    db1: { copies: [] }\n",
     "@FILE@:5:20: locator.databases.db1.copies: must name at least one server"},
    {"database without copies",
     "locator:\n  servers:\n    m: { address: a }\n  databases:\n    db1: {}\n",
     "@FILE@:5:5: locator.databases.db1: missing required key 'copies'"},
    {"unknown server in copies",
     "locator:\n  servers:\n    m: { address: a }\n  databases:\n    db1: { copies: [m, x] }\n",
     "@FILE@:5:24: locator.databases.db1.copies[1]: unknown server 'x' (not in locator.servers)"},
    {"server twice in copies",
     "locator:\n  servers:\n    m: { address: a }\n  databases:\n    db1: { copies: [m, m] }\n",
     "@FILE@:5:24: locator.databases.db1.copies[1]: server 'm' is listed twice"},
    {"active not a copy",
     "locator:\n  servers:\n    m: { address: a }\n    n: { address: b }\n  databases:\n"
     "    db1: { copies: [m], active: n }\n",
     "@FILE@:6:33: locator.databases.db1.active: 'n' is not one of the copies"},
    {"server without address", "locator:\n  servers:\n    m: { site: s }\nsites: { s: {} }\n",
     "@FILE@:3:5: locator.servers.m: missing required key 'address'"},
    {"server in unknown site", "locator:\n  servers:\n    m: { address: a, site: nowhere }\n",
     "@FILE@:3:28: locator.servers.m.site: unknown site 'nowhere' (not in sites)"},
    {"locator ldap: unknown key", "locator:\n  source: ldap\n  ldap: { uri: ldap://x }\n",
     "@FILE@:3:11: unknown key 'uri' in locator.ldap"},
    {"locator ldap without its section", "locator:\n  source: ldap\n",
     "@FILE@:2:11: locator.source: source ldap needs a locator.ldap section"},
    {"locator ldap: bad filter",
     "locator:\n  source: ldap\n  ldap: { uris: ldap://x, base: 'dc=x', filter: 'cn=a' }\n",
     "@FILE@:3:49: locator.ldap.filter: must be one filter in parentheses"},
    {"locator ldap: bad attribute name",
     "locator:\n  source: ldap\n  ldap: { uris: ldap://x, base: 'dc=x', attributes: { active: 'a b' } }\n",
     "@FILE@:3:63: locator.ldap.attributes.active: not an attribute name"},

    /* directory */
    {"user on unknown database",
     "locator:\n  servers:\n    m: { address: a }\n  databases:\n    db1: { copies: [m] }\n"
     "directory:\n  users:\n    bob:\n      password: \"$6$s$h\"\n      database: db9\n",
     "@FILE@:10:17: directory.users.bob.database: unknown database 'db9' (not in "
     "locator.databases)"},
    {"user without password", "directory:\n  users:\n    bob: { database: db1 }\n",
     "@FILE@:3:5: directory.users.bob: missing required key 'password'"},
    {"user with clear-text password",
     "directory:\n  users:\n    bob: { password: hunter2, database: db1 }\n",
     "@FILE@:3:22: directory.users.bob.password: not a crypt(3) hash"},
    {"user with unknown hash id",
     "directory:\n  users:\n    bob: { password: \"$9$a$b\", database: db1 }\n",
     "@FILE@:3:22: directory.users.bob.password: not a crypt(3) hash"},
    {"user version out of range",
     "directory:\n  users:\n    bob: { password: \"$6$a$b\", database: db1, version: 0 }\n",
     "@FILE@:3:56: directory.users.bob.version: must be between 1 and 99"},
    {"extension used twice",
     "directory:\n  users:\n    bob: { password: \"$6$a$b\", database: db1, extension: 12 }\n"
     "    eve: { password: \"$6$a$b\", database: db1, extension: 12 }\n",
     "@FILE@:4:5: directory.users.eve.extension: '12' is already used by user 'bob'"},
    {"directory ldap", "directory:\n  source: ldap\n",
     "@FILE@:2:11: directory.source: source ldap needs a directory.ldap section"},

    /* sites and globals */
    {"bad external_url", "sites:\n  a: { external_url: ftp://x }\n",
     "@FILE@:2:22: sites.a.external_url: must start with http:// or https://"},
    {"unknown local_site", "local_site: nowhere\n",
     "@FILE@:1:13: local_site: unknown site 'nowhere' (not in sites)"},
    {"unreadable CA file", "upstream:\n  ca_file: nope.pem\n",
     "@FILE@:2:12: upstream.ca_file: unreadable CA file '@DIR@/nope.pem': No such file or "
     "directory"},

    /* YAML itself */
    {"YAML syntax error", BASE "    count: [1, 2\n",
     "@FILE@:23:1: YAML syntax error: while parsing a flow sequence: did not find expected ',' "
     "or ']'"},
    {"YAML bad indentation", "workers: 1\n  log_level: info\n",
     "@FILE@:2:12: YAML syntax error: mapping values are not allowed in this context"},
    {"YAML tab", "auth:\n\tcache_ttl: 1s\n",
     "@FILE@:2:1: YAML syntax error: while scanning for the next token: found character that "
     "cannot start any token"},
    {"YAML invalid UTF-8", "workers: 1\nlog_level: \xff\n",
     "@FILE@:2:12: YAML error: invalid leading UTF-8 octet"},
    {"YAML two documents", PROTOCOLS "---\nworkers: 1\n",
     "@FILE@:7:1: only one YAML document is allowed"},
    {"YAML complex key", "? [a, b]\n: 1\n", "@FILE@:1:3: top level: keys must be strings, got a list"},
    {"YAML NUL in a string", BASE "    greeting: \"a\\0b\"\n",
     "@FILE@:22:15: protocols.dummy.greeting: contains a NUL byte"},
    {"control characters are not echoed", BASE "    \"a\\nb\": 1\n",
     "@FILE@:22:5: unknown key 'a?b' in protocols.dummy"},
};

static void test_errors(void **state)
{
    unsigned failed = 0;

    (void)state;
    /* Every row runs, so that one report lists every wrong message. */
    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
        if (!load_fails_with(error_cases[i].yaml, error_cases[i].expect)) {
            print_error("[  ROW     ] %s failed\n", error_cases[i].name);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* All errors are reported, not just the first. */
static void test_errors_collected(void **state)
{
    struct gw_config *conf;
    char *errors;

    (void)state;
    assert_int_equal(load(BASE "    count: 0\n"
                               "workers: 0\n"
                               "auth: { failure_delay: 2m, cache_size: x }\n"
                               "log_level: loud\n",
                          &conf, &errors),
                     -1);
    assert_error_line(errors, "@FILE@:22:12: protocols.dummy.count: must be between 1 and 100");
    assert_error_line(errors, "@FILE@:23:10: workers: must be between 1 and 64");
    assert_error_line(errors, "@FILE@:24:24: auth.failure_delay: must be between 0s and 1m");
    assert_error_line(errors, "@FILE@:24:40: auth.cache_size: expected an integer, got 'x'");
    assert_error_line(errors, "@FILE@:25:12: log_level: must be one of");
    assert_int_equal(count_lines(errors), 5);
    free(errors);
}

static void test_too_many_errors(void **state)
{
    char *yaml = malloc(200 * 32 + 1), *errors;
    struct gw_config *conf;
    size_t len = 0;
    const char *last;

    (void)state;
    assert_non_null(yaml);
    for (int i = 0; i < 150; i++)
        len += (size_t)sprintf(yaml + len, "bogus%d: 1\n", i);
    assert_int_equal(load(yaml, &conf, &errors), -1);
    free(yaml);
    /* 150 unknown keys and no protocol: 100 listed, then the count */
    assert_int_equal(count_lines(errors), 101);
    last = strrchr(errors, '\n');
    assert_non_null(last);
    assert_non_null(strstr(last, ": 51 more errors not shown"));
    free(errors);
}

static void test_unreadable_file(void **state)
{
    struct gw_config *conf;
    char *errors;

    (void)state;
    assert_int_equal(gw_config_load("/nonexistent/gateway.yaml", &conf, &errors), -1);
    assert_null(conf);
    assert_string_equal(errors, "/nonexistent/gateway.yaml: cannot read: No such file or "
                                "directory");
    free(errors);

    assert_int_equal(gw_config_load(tmpdir, &conf, &errors), -1);
    assert_non_null(strstr(errors, ": cannot read: Is a directory"));
    free(errors);
}

/* The canonical example stays valid (its plugins may not be built yet). */
static void test_example_config(void **state)
{
    struct gw_config *conf;
    char *errors;
    FILE *f = fopen(GW_EXAMPLE_CONF, "r");
    char *data;
    size_t len;

    (void)state;
    assert_non_null(f);
    data = malloc(1024 * 1024);
    assert_non_null(data);
    len = fread(data, 1, 1024 * 1024, f);
    fclose(f);
    if (gw_config_parse(GW_EXAMPLE_CONF, data, len, GW_CONFIG_NO_PLUGINS, &conf, &errors) < 0) {
        print_error("%s\n", errors);
        free(errors);
        free(data);
        fail();
    }
    free(data);
    assert_int_equal(conf->workers, 1);
    assert_int_equal(conf->nusers, 3);
    assert_int_equal(conf->nservers, 2);
    assert_int_equal(conf->ndatabases, 2);
    assert_int_equal(conf->nprotocols, 1);
    assert_string_equal(conf->protocols[0].name, "pop");
    assert_true(conf->protocols[0].listeners[0].allow_plaintext);
    assert_non_null(strstr(conf->plugin_dir, "examples/../build/plugins"));
    gw_config_free(&conf);
}

static void test_empty_file(void **state)
{
    (void)state;
    assert_true(load_fails_with("", "@FILE@: protocols: no protocol is enabled"));
    assert_true(load_fails_with("# nothing\n", "@FILE@: protocols: no protocol is enabled"));
}

/* ---- setup ---------------------------------------------------------- */

static int group_setup(void **state)
{
    const char *slash;

    (void)state;
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    pathf(conf_file, sizeof(conf_file), "%s/gateway.yaml", tmpdir);
    slash = strrchr(DUMMY_PLUGIN, '/');
    pathf(plugin_dir, sizeof(plugin_dir), "%.*s", (int)(slash - DUMMY_PLUGIN), DUMMY_PLUGIN);
    /* Only readability is checked by the loader, not the PEM inside. */
    write_file("cert.pem", "cert\n");
    write_file("cert2.pem", "cert\n");
    write_file("key.pem", "key\n");
    write_file("ca.pem", "ca\n");
    return 0;
}

static int group_teardown(void **state)
{
    static const char *const files[] = {"cert.pem", "cert2.pem", "key.pem", "ca.pem",
                                        "gateway.yaml", "plugins"};
    char path[PATH_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        pathf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    return rmdir(tmpdir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_address),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_plugin_paths),
        cmocka_unit_test(test_no_plugins_flag),
        cmocka_unit_test(test_listen_same_port_other_transport),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_errors_collected),
        cmocka_unit_test(test_too_many_errors),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_example_config),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
