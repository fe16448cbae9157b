/*
 * The operator's socket: each worker listens on "<admin.socket>.<worker>"
 * (a unix stream socket, mode 0600) and answers one command per line;
 * every answer ends with a line holding a single ".". gatewayctl sends a
 * command to every worker's socket, since each worker keeps its own view
 * (health, drain, active copies).
 *
 *   show                      databases, active copies, servers and health
 *   drain SERVER / undrain SERVER
 *   switchover DATABASE SERVER
 *   explain USER PROTOCOL     directory record, route decision and why
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"
#include "locator/ldap_source.h"

#define GW_ADMIN_LINE_MAX 512

struct admin_session {
    struct gw_conn *c;
    struct gw_lookup *lookup;
    struct gw_locldap_write *write;   /* switchover writing the directory */
    char protocol[32];
    char switch_db[128], switch_server[128];
};

static int admin_fd = -1;
static ev_io admin_io;
static char admin_path[128];

static void reply_end(struct admin_session *s)
{
    gw_conn_write(s->c, ".\n", 2);
}

static void explain_done(void *arg, enum gw_auth_result res, const struct gw_mailbox *m)
{
    struct admin_session *s = arg;
    struct gw_route r;

    s->lookup = NULL;
    gw_conn_resume(s->c);
    if (res != GW_AUTH_OK) {
        gw_conn_printf(s->c, "directory: %s\n", gw_auth_result_str(res));
        reply_end(s);
        return;
    }
    gw_conn_printf(s->c, "directory: user %s database %s version %d site %s\n", m->user,
                   m->database, m->version, m->site != NULL ? m->site : "-");
    {
        const struct gw_conf_database *db = gw_locator_database(m->database);
        if (db != NULL)
            gw_conn_printf(s->c, "database: %s active %s\n", db->name, gw_locator_active(db));
    }
    gw_route(m, s->protocol, strcmp(s->protocol, "http") == 0 ? GW_ROUTE_ALLOW_REDIRECT : 0, &r);
    switch (r.kind) {
    case GW_ROUTE_PROXY:
        gw_conn_printf(s->c, "route: proxy to %s (%s:%u, tls %s)\n", r.server, r.host, r.port,
                       r.tls == GW_TLS_IMPLICIT ? "implicit"
                       : r.tls == GW_TLS_STARTTLS ? "starttls" : "none");
        break;
    case GW_ROUTE_REDIRECT:
        gw_conn_printf(s->c, "route: redirect to %s (mailbox in site %s)\n", r.url,
                       m->site != NULL ? m->site : "-");
        break;
    case GW_ROUTE_REFUSE:
        gw_conn_printf(s->c, "route: refuse: %s\n", r.reason != NULL ? r.reason : "?");
        break;
    }
    reply_end(s);
}

static void switch_written(void *arg, const char *error)
{
    struct admin_session *s = arg;

    s->write = NULL;
    gw_conn_resume(s->c);
    if (error != NULL)
        gw_conn_printf(s->c, "error: %s\n", error);
    else
        gw_conn_printf(s->c, "ok: %s active on %s (written to the directory)\n", s->switch_db,
                       s->switch_server);
    reply_end(s);
}

static void admin_command(struct admin_session *s, char *line)
{
    char *save = NULL;
    char *cmd = strtok_r(line, " \t", &save);
    char *a1 = cmd != NULL ? strtok_r(NULL, " \t", &save) : NULL;
    char *a2 = a1 != NULL ? strtok_r(NULL, " \t", &save) : NULL;
    const char *err = NULL;

    if (cmd == NULL) {
        reply_end(s);
        return;
    }
    if (strcmp(cmd, "show") == 0) {
        char *text = gw_locator_describe();
        gw_conn_write(s->c, text, strlen(text));
        free(text);
    } else if ((strcmp(cmd, "drain") == 0 || strcmp(cmd, "undrain") == 0) && a1 != NULL) {
        if (gw_locator_drain(a1, cmd[0] == 'd', &err) < 0)
            gw_conn_printf(s->c, "error: %s\n", err);
        else
            gw_conn_printf(s->c, "ok: %s %sed\n", a1, cmd);
    } else if (strcmp(cmd, "switchover") == 0 && a1 != NULL && a2 != NULL &&
               gw_w.conf->loc_source == GW_LOC_LDAP) {
        snprintf(s->switch_db, sizeof(s->switch_db), "%s", a1);
        snprintf(s->switch_server, sizeof(s->switch_server), "%s", a2);
        s->write = gw_locldap_switchover(a1, a2, switch_written, s, &err);
        if (s->write != NULL) {
            gw_conn_pause(s->c);
            return;
        }
        gw_conn_printf(s->c, "error: %s\n", err);
    } else if (strcmp(cmd, "switchover") == 0 && a1 != NULL && a2 != NULL) {
        if (gw_locator_set_active(a1, a2, &err) < 0)
            gw_conn_printf(s->c, "error: %s\n", err);
        else
            gw_conn_printf(s->c, "ok: %s active on %s\n", a1, a2);
    } else if (strcmp(cmd, "explain") == 0 && a1 != NULL && a2 != NULL) {
        snprintf(s->protocol, sizeof(s->protocol), "%s", a2);
        gw_conn_pause(s->c);
        s->lookup = gw_resolve(a1, explain_done, s);
        return;
    } else {
        gw_conn_printf(s->c, "error: usage: show | drain SERVER | undrain SERVER | "
                             "switchover DATABASE SERVER | explain USER PROTOCOL\n");
    }
    reply_end(s);
}

static void admin_close(struct admin_session *s)
{
    gw_lookup_cancel(&s->lookup);
    gw_locldap_write_cancel(&s->write);
    gw_conn_close(s->c);
    free(s);
}

static void admin_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct admin_session *s = arg;
    const char *line;
    size_t len;
    int rc;

    if (ev != GW_EV_READ) {
        admin_close(s);
        return;
    }
    while (s->lookup == NULL && s->write == NULL && (rc = gw_conn_read_line(c, &line, &len)) != 0) {
        char buf[GW_ADMIN_LINE_MAX];
        if (rc < 0 || len >= sizeof(buf)) {
            admin_close(s);
            return;
        }
        memcpy(buf, line, len + 1);
        admin_command(s, buf);
    }
}

static void admin_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct admin_session *s;
    int fd;

    (void)loop;
    (void)w;
    (void)revents;
    fd = accept4(admin_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    s = gw_calloc(1, sizeof(*s));
    s->c = gw_conn_create(fd, "admin");
    snprintf(s->c->peer.addr, sizeof(s->c->peer.addr), "local");
    s->c->peer_set = true;
    gw_conn_set_handler(s->c, admin_event, s);
    gw_conn_set_timeout(s->c, 60000);
    gw_conn_update_io(s->c);
}

int gw_admin_start(const struct gw_config *conf, unsigned id)
{
    struct sockaddr_un sa;

    if (conf->admin_socket == NULL)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if ((size_t)snprintf(admin_path, sizeof(admin_path), "%s.%u", conf->admin_socket, id) >=
            sizeof(sa.sun_path)) {
        gw_log(GW_LOG_ERROR, NULL, "admin socket path too long: %s", conf->admin_socket);
        return -1;
    }
    memcpy(sa.sun_path, admin_path, strlen(admin_path) + 1);
    admin_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (admin_fd < 0)
        return -1;
    unlink(admin_path);
    if (bind(admin_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(admin_path, 0600) < 0 ||
        listen(admin_fd, 16) < 0) {
        gw_log(GW_LOG_ERROR, NULL, "admin socket %s: %s", admin_path, strerror(errno));
        close(admin_fd);
        admin_fd = -1;
        return -1;
    }
    ev_io_init(&admin_io, admin_accept_cb, admin_fd, EV_READ);
    ev_io_start(gw_w.loop, &admin_io);
    ev_unref(gw_w.loop); /* the loop does not live for the admin socket */
    return 0;
}

void gw_admin_stop(void)
{
    if (admin_fd < 0)
        return;
    ev_ref(gw_w.loop);
    ev_io_stop(gw_w.loop, &admin_io);
    close(admin_fd);
    admin_fd = -1;
    /* A newer worker with the same number may own the path by now (reload):
       only remove it if it is still ours, which we cannot tell cheaply; the
       next worker unlinks before binding anyway. */
}
