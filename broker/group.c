/* group.c - the group coordinator (see group.h): groups and members, the
 * rebalance state machine, session/rebalance/sync deadlines, committed
 * offsets and their retention, and persistence through meta_groups.
 *
 * The logic follows Kafka's classic coordinator
 * (core/src/main/scala/kafka/coordinator/group/GroupCoordinator.scala and
 * GroupMetadata.scala) function by function; the names in comments point
 * there. What differs is the plumbing: Kafka holds response callbacks in
 * purgatories, we hand out tickets and keep answers until the parked
 * request polls for them; Kafka's delayed operations are deadlines in the
 * group, served by one timer per group.
 *
 * Memory: allocation failures here are fatal (xmalloc), as in Redis's
 * zmalloc: a coordinator that silently lost a member or an offset would be
 * worse than a restart, which loses nothing that was acknowledged.
 */
#include "group.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <event2/event.h>

#include "broker.h"
#include "cluster.h"
#include "config.h"
#include "meta_groups.h"
#include "metrics.h"

group_config_t g_group_cfg = {
    .min_session_timeout_ms = 6000,
    .max_session_timeout_ms = 1800000,
    .initial_rebalance_delay_ms = 3000,
    .max_size = INT32_MAX,
    .offsets_retention_ms = 7LL * 24 * 3600 * 1000,
    .retention_check_interval_ms = 600000,
    .offset_metadata_max_bytes = 4096,
};

#define NEW_MEMBER_JOIN_TIMEOUT_MS (5 * 60 * 1000) /* GroupCoordinator.NewMemberJoinTimeoutMs */
#define ANSWER_TTL_MS 60000                        /* unclaimed answers (connection gone) are dropped */
#define GROUP_BUCKETS 1024
#define ANSWER_BUCKETS 256
#define CONSUMER_PROTOCOL "consumer"

#ifndef TAILQ_FOREACH_SAFE /* BSD's; glibc's sys/queue.h lacks it */
#define TAILQ_FOREACH_SAFE(var, head, field, tvar) \
    for ((var) = TAILQ_FIRST(head); (var) && ((tvar) = TAILQ_NEXT(var, field), 1); (var) = (tvar))
#endif

static int64_t (*clock_fn)(void) = now_ms;
static meta_groups_t *store;
static struct event *retention_timer;

static group_t *gbuckets[GROUP_BUCKETS];
static TAILQ_HEAD(group_list, group) all_groups = TAILQ_HEAD_INITIALIZER(all_groups);
static int ngroups;

static ganswer_t *abuckets[ANSWER_BUCKETS];
static TAILQ_HEAD(answer_list, ganswer) answers = TAILQ_HEAD_INITIALIZER(answers);
static uint64_t next_ticket = 1;

static const char *state_names[GS__MAX] = {"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"};

const char *group_state_name(gstate_t s) { return s < GS__MAX ? state_names[s] : "?"; }

/* ---- small helpers ---- */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    KS_ASSERT(p != NULL);
    return p;
}

static void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    KS_ASSERT(p != NULL);
    return p;
}

static char *xstrdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = xmalloc(n + 1);
    memcpy(d, s, n + 1);
    return d;
}

/* A kstr as a C string; NUL bytes (never in ids we accept) become '?'. */
static char *kdup(kstr_t s) {
    if (s.len < 0) return NULL;
    char *d = xmalloc((size_t)s.len + 1);
    for (int32_t i = 0; i < s.len; i++) d[i] = s.p[i] ? s.p[i] : '?';
    d[s.len] = 0;
    return d;
}

static uint8_t *bdup(const void *p, int32_t len) {
    uint8_t *d = xmalloc(len > 0 ? (size_t)len : 1);
    if (len > 0) memcpy(d, p, (size_t)len);
    return d;
}

static bool has_nul(kstr_t s) { return s.len > 0 && memchr(s.p, 0, (size_t)s.len) != NULL; }

static uint32_t fnv(const char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 16777619u;
    return h;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* isValidGroupId: a group id is never null; it may be empty only for the
 * offset APIs, DescribeGroups and DeleteGroups. We also refuse NUL bytes. */
static int16_t validate_group_id(kstr_t id, bool allow_empty) {
    if (id.len < 0 || (id.len == 0 && !allow_empty) || has_nul(id)) return KERR_INVALID_GROUP_ID;
    return KERR_NONE;
}

/* ---- answers to waiting requests ---- */

void group_answer_free(ganswer_t *a) {
    if (!a) return;
    free(a->protocol_type);
    free(a->protocol_name);
    free(a->leader);
    free(a->member_id);
    for (int i = 0; i < a->nmembers; i++) {
        free(a->members[i].member_id);
        free(a->members[i].instance_id);
        free(a->members[i].metadata);
    }
    free(a->members);
    free(a->assignment);
    free(a);
}

static ganswer_t *answer_new(int16_t err) {
    ganswer_t *a = xcalloc(1, sizeof *a);
    a->error = err;
    a->generation = -1;
    return a;
}

/* JoinGroupResult(memberId, error) */
static ganswer_t *join_error(const char *member_id, int16_t err) {
    ganswer_t *a = answer_new(err);
    a->member_id = xstrdup(member_id ? member_id : "");
    a->leader = xstrdup("");
    return a;
}

static ganswer_t *join_error_k(kstr_t member_id, int16_t err) {
    ganswer_t *a = answer_new(err);
    a->member_id = member_id.len >= 0 ? kdup(member_id) : xstrdup("");
    a->leader = xstrdup("");
    return a;
}

static void answer_unlink(ganswer_t *a) {
    for (ganswer_t **pp = &abuckets[a->ticket % ANSWER_BUCKETS]; *pp; pp = &(*pp)->hash_next)
        if (*pp == a) { *pp = a->hash_next; break; }
    TAILQ_REMOVE(&answers, a, link);
}

/* Files the answer for a waiting ticket and wakes the parked requests. */
static void answer_put(uint64_t ticket, ganswer_t *a) {
    int64_t now = clock_fn();
    a->ticket = ticket;
    a->created_ms = now;
    a->hash_next = abuckets[ticket % ANSWER_BUCKETS];
    abuckets[ticket % ANSWER_BUCKETS] = a;
    TAILQ_INSERT_TAIL(&answers, a, link);
    ganswer_t *old;
    while ((old = TAILQ_FIRST(&answers)) && old->created_ms < now - ANSWER_TTL_MS) {
        answer_unlink(old);
        group_answer_free(old);
    }
    kreq_wake_parked();
}

static ganswer_t *answer_take(uint64_t ticket) {
    for (ganswer_t *a = abuckets[ticket % ANSWER_BUCKETS]; a; a = a->hash_next)
        if (a->ticket == ticket) {
            answer_unlink(a);
            return a;
        }
    return NULL;
}

/* ---- groups ---- */

static group_t *group_find(kstr_t id) {
    if (id.len < 0) return NULL;
    for (group_t *g = gbuckets[fnv(id.p, (size_t)id.len) % GROUP_BUCKETS]; g; g = g->hash_next)
        if (kstr_eq_c(id, g->id)) return g;
    return NULL;
}

static void group_arm(group_t *g);
static void member_answer_tickets(gmember_t *m, int16_t err);
static void load_group(void *arg, const mg_group_t *mg);
static void load_offset(void *arg, const char *group_id, const mg_offset_t *mo);

/* ---- cluster: only the group's coordinator serves it ----
 * Which broker coordinates a group is computed from the live brokers
 * (cluster_coordinator). A group is loaded from the metadata store the first
 * time it is used after this broker became its coordinator, and forgotten
 * when it moves away (group_coordinators_changed), so that what another
 * coordinator wrote meanwhile is read again next time. */
static int16_t coordinator_check(kstr_t id) {
    if (!cluster_enabled()) return KERR_NONE;
    if (cluster_coordinator(id) != g_broker.cfg.node_id) return KERR_NOT_COORDINATOR;
    /* Paused past our lease (or cut off from etcd): another broker may
     * coordinate the group now; writing its state here could undo theirs. */
    if (!cluster_lease_alive()) return KERR_NOT_COORDINATOR;
    if (group_find(id) || !store) return KERR_NONE;
    char *gid = kdup(id);
    char err[512];
    int noffsets = 0;
    mg_load_cb_t cb = {load_group, load_offset, &noffsets};
    int rc = meta_groups_load_group(store, gid, &cb, err, sizeof err);
    free(gid);
    if (rc) {
        log_warn("group %.*s: cannot load it from the metadata store: %s", id.len > 200 ? 200 : (int)id.len, id.p, err);
        return KERR_COORDINATOR_NOT_AVAILABLE;
    }
    group_t *g = group_find(id);
    if (g) {
        log_info("group %s: now coordinated here (%d committed offset(s))", g->id, noffsets);
        group_arm(g);
    }
    return KERR_NONE;
}

static int16_t group_check(kstr_t id, bool allow_empty) {
    int16_t err = validate_group_id(id, allow_empty);
    return err ? err : coordinator_check(id);
}

static void group_free(group_t *g);

static void groups_forget(bool all) {
    if (!cluster_enabled()) return;
    group_t *g, *next;
    for (g = TAILQ_FIRST(&all_groups); g; g = next) {
        next = TAILQ_NEXT(g, link);
        if (!all && cluster_coordinator(kstr_c(g->id)) == g_broker.cfg.node_id) continue;
        if (all) log_info("group %s: forgotten (our lease was lost); read again from etcd when next used", g->id);
        else log_info("group %s: its coordinator is now broker %d", g->id, cluster_coordinator(kstr_c(g->id)));
        gmember_t *m;
        TAILQ_FOREACH(m, &g->members, link) member_answer_tickets(m, KERR_NOT_COORDINATOR);
        group_free(g);
    }
}

void group_coordinators_changed(void) { groups_forget(false); }

/* Our lease was lost: another broker may have coordinated any of our groups
 * meanwhile, so what we hold is stale; each is read again from etcd. */
void group_forget_all(void) { groups_forget(true); }

static group_t *group_create_c(const char *id) {
    group_t *g = xcalloc(1, sizeof *g);
    g->magic = GROUP_MAGIC;
    g->id = xstrdup(id);
    g->state = GS_EMPTY;
    g->state_ms = clock_fn();
    TAILQ_INIT(&g->members);
    uint32_t b = fnv(g->id, strlen(g->id)) % GROUP_BUCKETS;
    g->hash_next = gbuckets[b];
    gbuckets[b] = g;
    TAILQ_INSERT_TAIL(&all_groups, g, link);
    ngroups++;
    return g;
}

static void member_free(gmember_t *m) {
    KS_ASSERT(m->magic == GMEMBER_MAGIC);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    for (int i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    free(m->assignment);
    m->magic = 0;
    free(m);
}

static void offsets_clear(group_t *g) {
    for (uint32_t b = 0; b < g->nobuckets; b++) {
        goffset_t *o = g->obuckets[b];
        while (o) {
            goffset_t *n = o->next;
            free(o->topic);
            free(o->metadata);
            free(o);
            o = n;
        }
    }
    free(g->obuckets);
    g->obuckets = NULL;
    g->nobuckets = g->noffsets = 0;
}

static void subscribed_clear(group_t *g) {
    for (int i = 0; i < g->nsubscribed; i++) free(g->subscribed[i]);
    free(g->subscribed);
    g->subscribed = NULL;
    g->nsubscribed = 0;
    g->subscribed_known = false;
}

static void member_answer_tickets(gmember_t *m, int16_t err);

/* Unlinks and frees a group (Dead or shutdown). */
static void group_free(group_t *g) {
    KS_ASSERT(g->magic == GROUP_MAGIC);
    for (group_t **pp = &gbuckets[fnv(g->id, strlen(g->id)) % GROUP_BUCKETS]; *pp; pp = &(*pp)->hash_next)
        if (*pp == g) { *pp = g->hash_next; break; }
    TAILQ_REMOVE(&all_groups, g, link);
    ngroups--;
    gmember_t *m;
    while ((m = TAILQ_FIRST(&g->members))) {
        TAILQ_REMOVE(&g->members, m, link);
        member_answer_tickets(m, KERR_COORDINATOR_NOT_AVAILABLE);
        member_free(m);
    }
    for (int i = 0; i < g->npending; i++) free(g->pending[i].id);
    free(g->pending);
    offsets_clear(g);
    subscribed_clear(g);
    if (g->timer) event_free(g->timer);
    free(g->id);
    free(g->protocol_type);
    free(g->protocol);
    g->magic = 0;
    free(g);
}

/* GroupMetadata.transitionTo, with its valid previous states. */
static void set_state(group_t *g, gstate_t s) {
    static const unsigned valid_from[GS__MAX] = {
        [GS_EMPTY] = 1u << GS_PREPARING_REBALANCE,
        [GS_PREPARING_REBALANCE] = 1u << GS_STABLE | 1u << GS_COMPLETING_REBALANCE | 1u << GS_EMPTY,
        [GS_COMPLETING_REBALANCE] = 1u << GS_PREPARING_REBALANCE,
        [GS_STABLE] = 1u << GS_COMPLETING_REBALANCE,
        [GS_DEAD] = 1u << GS_STABLE | 1u << GS_PREPARING_REBALANCE | 1u << GS_COMPLETING_REBALANCE |
                    1u << GS_EMPTY | 1u << GS_DEAD,
    };
    KS_ASSERT(s < GS__MAX && (valid_from[s] & (1u << g->state)));
    if (g->state != s)
        log_debug("group %s: %s -> %s (generation %d)", g->id, state_names[g->state], state_names[s], g->generation);
    g->state = s;
    g->state_ms = clock_fn();
}

/* ---- members ---- */

static gmember_t *member_find(group_t *g, kstr_t id) {
    if (id.len <= 0) return NULL;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link)
        if (kstr_eq_c(id, m->id)) return m;
    return NULL;
}

static gmember_t *static_member(group_t *g, kstr_t instance_id) {
    if (instance_id.len < 0) return NULL;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link)
        if (m->instance_id && kstr_eq_c(instance_id, m->instance_id)) return m;
    return NULL;
}

static int pending_index(group_t *g, kstr_t id) {
    for (int i = 0; i < g->npending; i++)
        if (kstr_eq_c(id, g->pending[i].id)) return i;
    return -1;
}

static void pending_remove_at(group_t *g, int i) {
    free(g->pending[i].id);
    g->pending[i] = g->pending[--g->npending];
}

static void pending_add(group_t *g, const char *id, int64_t deadline) {
    if (g->npending == g->pending_cap) {
        g->pending_cap = g->pending_cap ? 2 * g->pending_cap : 4;
        g->pending = realloc(g->pending, (size_t)g->pending_cap * sizeof *g->pending);
        KS_ASSERT(g->pending != NULL);
    }
    g->pending[g->npending++] = (gpending_t){xstrdup(id), deadline};
}

static void member_set_protocols(gmember_t *m, const gjoin_args_t *a) {
    for (int i = 0; i < m->nprotocols; i++) {
        free(m->protocols[i].name);
        free(m->protocols[i].metadata);
    }
    free(m->protocols);
    m->nprotocols = a->nprotocols;
    m->protocols = xcalloc((size_t)a->nprotocols, sizeof *m->protocols);
    for (int i = 0; i < a->nprotocols; i++) {
        m->protocols[i].name = kdup(a->protocol_names[i]);
        m->protocols[i].len = a->protocol_metadata[i].len > 0 ? a->protocol_metadata[i].len : 0;
        m->protocols[i].metadata = bdup(a->protocol_metadata[i].p, m->protocols[i].len);
    }
}

/* MemberMetadata.matches: the same protocols, metadata and order. */
static bool member_matches(const gmember_t *m, const gjoin_args_t *a) {
    if (m->nprotocols != a->nprotocols) return false;
    for (int i = 0; i < a->nprotocols; i++) {
        int32_t len = a->protocol_metadata[i].len > 0 ? a->protocol_metadata[i].len : 0;
        if (!kstr_eq_c(a->protocol_names[i], m->protocols[i].name) || len != m->protocols[i].len ||
            (len && memcmp(a->protocol_metadata[i].p, m->protocols[i].metadata, (size_t)len)))
            return false;
    }
    return true;
}

const gprotocol_t *gmember_protocol(const gmember_t *m, const char *protocol) {
    if (!protocol) return NULL;
    for (int i = 0; i < m->nprotocols; i++)
        if (!strcmp(m->protocols[i].name, protocol)) return &m->protocols[i];
    return NULL;
}

static int support_count(group_t *g, const char *name, size_t len) {
    int n = 0;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link)
        for (int i = 0; i < m->nprotocols; i++)
            if (strlen(m->protocols[i].name) == len && !memcmp(m->protocols[i].name, name, len)) { n++; break; }
    return n;
}

/* GroupMetadata.supportsProtocols */
static bool supports_protocols(group_t *g, const gjoin_args_t *a) {
    if (g->state == GS_EMPTY) return a->protocol_type.len > 0 && a->nprotocols > 0;
    if (!g->protocol_type || !kstr_eq_c(a->protocol_type, g->protocol_type)) return false;
    for (int i = 0; i < a->nprotocols; i++)
        if (a->protocol_names[i].len >= 0 &&
            support_count(g, a->protocol_names[i].p, (size_t)a->protocol_names[i].len) == g->nmembers)
            return true;
    return false;
}

/* GroupMetadata.selectProtocol: among the protocols every member supports,
 * each member votes for its most preferred; the most votes win (ties: the
 * first voted for). Returns a malloc'ed name. */
static char *select_protocol(group_t *g) {
    KS_ASSERT(g->nmembers > 0);
    const char *best = NULL;
    int best_votes = 0;
    gmember_t *m;
    /* votes[i] for the vote of the i-th member */
    const char **votes = xcalloc((size_t)g->nmembers, sizeof *votes);
    int k = 0;
    TAILQ_FOREACH(m, &g->members, link) {
        for (int i = 0; i < m->nprotocols; i++)
            if (support_count(g, m->protocols[i].name, strlen(m->protocols[i].name)) == g->nmembers) {
                votes[k] = m->protocols[i].name;
                break;
            }
        k++;
    }
    for (int i = 0; i < k; i++) {
        if (!votes[i]) continue;
        int n = 0;
        for (int j = 0; j < k; j++)
            if (votes[j] && !strcmp(votes[i], votes[j])) n++;
        if (n > best_votes) { best = votes[i]; best_votes = n; }
    }
    /* No protocol in common (cannot happen through JoinGroup's checks):
     * fall back to the leader's first choice. */
    if (!best) best = g->leader && g->leader->nprotocols ? g->leader->protocols[0].name : "";
    char *r = xstrdup(best);
    free(votes);
    return r;
}

static int32_t rebalance_timeout(group_t *g) {
    int32_t t = 0;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link)
        if (m->rebalance_timeout_ms > t) t = m->rebalance_timeout_ms;
    return t;
}

/* Answers a member's waiting requests with `err` (the member is going away). */
static void member_answer_tickets(gmember_t *m, int16_t err) {
    if (m->join_ticket) answer_put(m->join_ticket, join_error("", err));
    if (m->sync_ticket) answer_put(m->sync_ticket, answer_new(err));
    m->join_ticket = m->sync_ticket = 0;
}

/* GroupMetadata.add */
static void group_add(group_t *g, gmember_t *m, kstr_t protocol_type) {
    if (g->nmembers == 0) {
        free(g->protocol_type);
        g->protocol_type = kdup(protocol_type);
    }
    if (!g->leader) g->leader = m;
    TAILQ_INSERT_TAIL(&g->members, m, link);
    g->nmembers++;
    int i = pending_index(g, kstr_c(m->id));
    if (i >= 0) pending_remove_at(g, i);
}

/* GroupMetadata.remove: the member goes; a waiting JoinGroup/SyncGroup of it
 * gets UNKNOWN_MEMBER_ID. */
static void member_remove(group_t *g, gmember_t *m) {
    TAILQ_REMOVE(&g->members, m, link);
    g->nmembers--;
    if (g->leader == m) g->leader = TAILQ_FIRST(&g->members);
    member_answer_tickets(m, KERR_UNKNOWN_MEMBER_ID);
    member_free(m);
}

/* Kafka: clientId (or group.instance.id) + "-" + a random UUID. */
static char *generate_member_id(const char *prefix) {
    uint8_t u[16];
    if (getrandom(u, sizeof u, 0) != (ssize_t)sizeof u)
        for (size_t i = 0; i < sizeof u; i++) u[i] = (uint8_t)rand();
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
    size_t n = strlen(prefix);
    char *id = xmalloc(n + 1 + 36 + 1);
    memcpy(id, prefix, n);
    char *p = id + n;
    *p++ = '-';
    for (int i = 0; i < 16; i++) {
        p += sprintf(p, "%02x", u[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9) *p++ = '-';
    }
    *p = 0;
    return id;
}

/* ---- subscribed topics (consumer protocol) ---- */

/* GroupMetadata.computeSubscribedTopics: the union of the topics in every
 * member's ConsumerProtocolSubscription (parsed as its v0 prefix: version,
 * topics); unknown when the protocol type is not "consumer" or a
 * subscription does not parse. */
static void compute_subscribed(group_t *g) {
    subscribed_clear(g);
    if (!g->protocol_type || strcmp(g->protocol_type, CONSUMER_PROTOCOL)) return;
    if (g->nmembers == 0) { g->subscribed_known = true; return; }
    if (!g->protocol) return;
    int cap = 0;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link) {
        const gprotocol_t *p = gmember_protocol(m, g->protocol);
        if (!p) { subscribed_clear(g); return; }
        kr_t r = kr_init(p->metadata, (size_t)p->len);
        int16_t version = kr_i16(&r);
        int32_t n = kr_arraycnt(&r, false, 100000, 2);
        if (r.err || version < 0 || n < 0) { subscribed_clear(g); return; }
        for (int32_t i = 0; i < n; i++) {
            kstr_t t = kr_str(&r, false);
            if (r.err || t.len < 0) { subscribed_clear(g); return; }
            bool seen = false;
            for (int k = 0; k < g->nsubscribed && !seen; k++) seen = kstr_eq_c(t, g->subscribed[k]);
            if (seen) continue;
            if (g->nsubscribed == cap) {
                cap = cap ? 2 * cap : 8;
                g->subscribed = realloc(g->subscribed, (size_t)cap * sizeof *g->subscribed);
                KS_ASSERT(g->subscribed != NULL);
            }
            g->subscribed[g->nsubscribed++] = kdup(t);
        }
    }
    g->subscribed_known = true;
}

/* GroupMetadata.isSubscribedToTopic: true when unknown, to be safe. */
static bool is_subscribed(group_t *g, kstr_t topic) {
    if (!g->subscribed_known) return true;
    for (int i = 0; i < g->nsubscribed; i++)
        if (kstr_eq_c(topic, g->subscribed[i])) return true;
    return false;
}

/* ---- persistence ---- */

/* groupManager.storeGroup: the group's metadata with every member's
 * subscription (metadata of the selected protocol) and assignment. */
static int store_group(group_t *g) {
    if (!store) return 0;
    mg_member_t *mm = xcalloc((size_t)g->nmembers, sizeof *mm);
    int i = 0;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link) {
        const gprotocol_t *p = gmember_protocol(m, g->protocol);
        mm[i++] = (mg_member_t){
            .member_id = m->id, .instance_id = m->instance_id, .client_id = m->client_id,
            .client_host = m->client_host, .session_timeout_ms = m->session_timeout_ms,
            .rebalance_timeout_ms = m->rebalance_timeout_ms, .subscription = p ? p->metadata : NULL,
            .subscription_len = p ? p->len : 0, .assignment = m->assignment, .assignment_len = m->assignment_len};
    }
    mg_group_t mg = {
        .group_id = g->id, .protocol_type = g->protocol_type, .protocol = g->protocol,
        .leader = g->leader ? g->leader->id : NULL, .generation = g->generation, .state_ms = g->state_ms,
        .nmembers = g->nmembers, .members = mm};
    int rc = meta_groups_put_group(store, &mg);
    free(mm);
    if (rc) log_error("group %s: cannot write the group's metadata to the metadata store", g->id);
    return rc;
}

/* ---- deadlines ---- */

/* MemberMetadata.hasSatisfiedHeartbeat, negated, at `now`. */
static bool member_expired(const gmember_t *m, int64_t now) {
    if (now < m->hb_deadline_ms) return false;
    if (m->is_new) return true;
    return !(m->join_ticket || m->sync_ticket);
}

static void group_timer_cb(evutil_socket_t fd, short what, void *arg);

/* Arms the group's timer for its earliest deadline. */
static void group_arm(group_t *g) {
    if (!g_broker.base) return;
    int64_t next = INT64_MAX;
    if (g->state == GS_PREPARING_REBALANCE) next = min64(next, g->join_deadline_ms);
    if (g->sync_deadline_ms) next = min64(next, g->sync_deadline_ms);
    for (int i = 0; i < g->npending; i++) next = min64(next, g->pending[i].deadline_ms);
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link)
        if (m->is_new || !(m->join_ticket || m->sync_ticket)) next = min64(next, m->hb_deadline_ms);
    if (next == INT64_MAX) {
        if (g->timer) evtimer_del(g->timer);
        return;
    }
    if (!g->timer) {
        g->timer = evtimer_new(g_broker.base, group_timer_cb, g);
        KS_ASSERT(g->timer != NULL);
    }
    int64_t delay = max64(next - clock_fn(), 0);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(g->timer, &tv);
}

/* ---- the rebalance state machine ---- */

static void prepare_rebalance(group_t *g, const char *reason);
static void complete_join(group_t *g);

/* GroupCoordinator.maybePrepareRebalance (canRebalance) */
static void maybe_prepare_rebalance(group_t *g, const char *reason) {
    if (g->state == GS_STABLE || g->state == GS_COMPLETING_REBALANCE || g->state == GS_EMPTY)
        prepare_rebalance(g, reason);
}

static bool all_members_joined(group_t *g) {
    if (g->npending) return false;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link)
        if (!m->join_ticket) return false;
    return true;
}

/* DelayedJoin.tryComplete: the join phase ends once everyone rejoined
 * (the initial delayed join only ends at its deadline). */
static void try_complete_join(group_t *g) {
    if (g->state == GS_PREPARING_REBALANCE && !g->initial_delay && all_members_joined(g)) complete_join(g);
}

/* The answer a member gets for the current generation. */
static ganswer_t *join_answer(group_t *g, gmember_t *m, bool with_members, bool skip, const char *leader) {
    ganswer_t *a = answer_new(KERR_NONE);
    a->generation = g->generation;
    a->protocol_type = xstrdup(g->protocol_type);
    a->protocol_name = xstrdup(g->protocol);
    a->leader = xstrdup(leader ? leader : g->leader ? g->leader->id : "");
    a->member_id = xstrdup(m->id);
    a->skip_assignment = skip;
    if (with_members) {
        a->members = xcalloc((size_t)g->nmembers, sizeof *a->members);
        gmember_t *x;
        TAILQ_FOREACH(x, &g->members, link) {
            gjoin_member_t *jm = &a->members[a->nmembers++];
            const gprotocol_t *p = gmember_protocol(x, g->protocol);
            jm->member_id = xstrdup(x->id);
            jm->instance_id = xstrdup(x->instance_id);
            jm->len = p ? p->len : 0;
            jm->metadata = bdup(p ? p->metadata : NULL, jm->len);
        }
    }
    return a;
}

/* GroupMetadata.maybeInvokeJoinCallback */
static void answer_join(gmember_t *m, ganswer_t *a) {
    if (!m->join_ticket) { group_answer_free(a); return; }
    answer_put(m->join_ticket, a);
    m->join_ticket = 0;
}

/* GroupMetadata.maybeInvokeSyncCallback; true when a SyncGroup waited. */
static bool answer_sync(group_t *g, gmember_t *m, int16_t err) {
    if (!m->sync_ticket) return false;
    ganswer_t *a = answer_new(err);
    if (err == KERR_NONE) {
        a->protocol_type = xstrdup(g->protocol_type);
        a->protocol_name = xstrdup(g->protocol);
        a->assignment_len = m->assignment_len;
        a->assignment = bdup(m->assignment, m->assignment_len);
    }
    answer_put(m->sync_ticket, a);
    m->sync_ticket = 0;
    return true;
}

/* propagateAssignment: answers waiting SyncGroups; their session restarts. */
static void propagate_assignment(group_t *g, int16_t err) {
    int64_t now = clock_fn();
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link) {
        if (err == KERR_NONE && m->assignment_len == 0)
            log_debug("group %s: empty assignment for member %s in generation %d", g->id, m->id, g->generation);
        if (answer_sync(g, m, err)) m->hb_deadline_ms = now + m->session_timeout_ms;
    }
}

/* resetAndPropagateAssignmentError */
static void reset_assignment_error(group_t *g, int16_t err) {
    KS_ASSERT(g->state == GS_COMPLETING_REBALANCE);
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link) {
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
    }
    propagate_assignment(g, err);
}

static void clear_pending_sync(group_t *g) {
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link) m->pending_sync = false;
    g->sync_deadline_ms = 0;
}

/* GroupCoordinator.prepareRebalance */
static void prepare_rebalance(group_t *g, const char *reason) {
    if (g->state == GS_COMPLETING_REBALANCE) reset_assignment_error(g, KERR_REBALANCE_IN_PROGRESS);
    clear_pending_sync(g);
    int64_t now = clock_fn();
    int32_t rt = rebalance_timeout(g);
    if (g->state == GS_EMPTY) {
        /* InitialDelayedJoin: wait group.initial.rebalance.delay.ms for more
         * members, extended while new ones arrive, up to the rebalance timeout. */
        int32_t delay = g_group_cfg.initial_rebalance_delay_ms;
        g->initial_delay = true;
        g->new_member_added = false;
        g->join_deadline_ms = now + delay;
        g->initial_remaining_ms = max64((int64_t)rt - delay, 0);
    } else {
        g->initial_delay = false;
        g->join_deadline_ms = now + rt;
    }
    gstate_t from = g->state;
    set_state(g, GS_PREPARING_REBALANCE);
    log_info("group %s: preparing to rebalance in state %s with old generation %d (reason: %s)", g->id,
             state_names[from], g->generation, reason);
    try_complete_join(g);
}

/* GroupMetadata.maybeElectNewJoinedLeader */
static bool elect_joined_leader(group_t *g) {
    if (!g->leader) return false;
    if (g->leader->join_ticket) return true;
    gmember_t *m;
    TAILQ_FOREACH(m, &g->members, link)
        if (m->join_ticket) {
            log_info("group %s: leader %s did not rejoin before the rebalance timeout; %s leads now", g->id,
                     g->leader->id, m->id);
            g->leader = m;
            return true;
        }
    return false;
}

/* GroupMetadata.initNextGeneration */
static void init_next_generation(group_t *g) {
    g->generation++;
    free(g->protocol);
    g->protocol = g->nmembers ? select_protocol(g) : NULL;
    compute_subscribed(g);
    set_state(g, g->nmembers ? GS_COMPLETING_REBALANCE : GS_EMPTY);
    clear_pending_sync(g);
}

/* GroupCoordinator.onCompleteJoin */
static void complete_join(group_t *g) {
    int64_t now = clock_fn();
    gmember_t *m, *tmp;
    TAILQ_FOREACH_SAFE(m, &g->members, link, tmp)
        if (!m->join_ticket && !m->instance_id) {
            log_info("group %s: removing member %s, which did not rejoin in time", g->id, m->id);
            member_remove(g, m);
        }
    if (!elect_joined_leader(g) && g->nmembers > 0) {
        /* Nobody rejoined: wait another rebalance timeout, until session
         * timeouts removed the silent members. */
        log_error("group %s: could not complete the rebalance because no member rejoined", g->id);
        g->initial_delay = false;
        g->join_deadline_ms = now + rebalance_timeout(g);
        return;
    }
    init_next_generation(g);
    if (g->state == GS_EMPTY) {
        log_info("group %s: generation %d is empty", g->id, g->generation);
        if (store_group(g)) log_warn("group %s: failed to write the empty group's metadata", g->id);
        return;
    }
    log_info("group %s: stabilized generation %d (protocol %s) with %d member(s), leader %s", g->id, g->generation,
             g->protocol, g->nmembers, g->leader->id);
    TAILQ_FOREACH(m, &g->members, link) {
        answer_join(m, join_answer(g, m, m == g->leader, false, NULL));
        m->hb_deadline_ms = now + m->session_timeout_ms;
        m->is_new = false;
        m->pending_sync = true;
    }
    /* schedulePendingSync: members that do not sync in time are removed. */
    g->sync_deadline_ms = now + rebalance_timeout(g);
}

/* GroupCoordinator.removeMemberAndUpdateGroup */
static void remove_member_and_update(group_t *g, gmember_t *m, const char *reason) {
    member_remove(g, m);
    switch (g->state) {
    case GS_STABLE:
    case GS_COMPLETING_REBALANCE: maybe_prepare_rebalance(g, reason); break;
    case GS_PREPARING_REBALANCE: try_complete_join(g); break;
    default: break;
    }
}

/* Runs the deadlines of one group due at `now`. */
static void group_process(group_t *g, int64_t now) {
    KS_ASSERT(g->magic == GROUP_MAGIC);
    /* Pending members (MEMBER_ID_REQUIRED) that never came back. */
    for (int i = 0; i < g->npending;) {
        if (now < g->pending[i].deadline_ms) { i++; continue; }
        log_info("group %s: pending member %s removed after its session timeout", g->id, g->pending[i].id);
        pending_remove_at(g, i);
        if (g->state == GS_PREPARING_REBALANCE) try_complete_join(g);
    }
    /* Members whose session expired (onExpireHeartbeat). */
    for (bool again = true; again;) {
        again = false;
        gmember_t *m;
        TAILQ_FOREACH(m, &g->members, link)
            if (member_expired(m, now)) {
                log_info("group %s: member %s has failed (no heartbeat within %d ms), removing it", g->id, m->id,
                         m->is_new ? NEW_MEMBER_JOIN_TIMEOUT_MS : m->session_timeout_ms);
                remove_member_and_update(g, m, "member session expired");
                again = true; /* the list changed */
                break;
            }
    }
    /* The join phase's deadline (DelayedJoin / InitialDelayedJoin; an
     * extension may already be due with a 0 ms delay). */
    for (int round = 0; round < 4 && g->state == GS_PREPARING_REBALANCE && now >= g->join_deadline_ms; round++) {
        if (g->initial_delay && g->new_member_added && g->initial_remaining_ms > 0) {
            int64_t cur = g_group_cfg.initial_rebalance_delay_ms;
            int64_t delay = min64(cur, g->initial_remaining_ms);
            g->initial_remaining_ms = max64(g->initial_remaining_ms - cur, 0);
            g->new_member_added = false;
            g->join_deadline_ms = now + delay;
        } else {
            g->initial_delay = false;
            complete_join(g);
        }
    }
    /* The pending-sync deadline (onExpirePendingSync). */
    if (g->sync_deadline_ms && now >= g->sync_deadline_ms) {
        g->sync_deadline_ms = 0;
        if (g->state == GS_COMPLETING_REBALANCE || g->state == GS_STABLE) {
            bool removed = false;
            gmember_t *m, *tmp;
            TAILQ_FOREACH_SAFE(m, &g->members, link, tmp)
                if (m->pending_sync) {
                    log_info("group %s: removing member %s, which did not send SyncGroup in time", g->id, m->id);
                    member_remove(g, m);
                    removed = true;
                }
            if (removed) prepare_rebalance(g, "members did not sync in time");
        }
    }
}

static void group_timer_cb(evutil_socket_t fd, short what, void *arg) {
    group_t *g = arg;
    group_process(g, clock_fn());
    group_arm(g);
}

void group_tick(int64_t now) {
    group_t *g;
    TAILQ_FOREACH(g, &all_groups, link) {
        group_process(g, now);
        group_arm(g);
    }
}

/* ---- JoinGroup ---- */

/* GroupCoordinator.validateCurrentMember */
static int16_t validate_current_member(group_t *g, kstr_t member_id, kstr_t instance_id) {
    if (instance_id.len >= 0) {
        gmember_t *s = static_member(g, instance_id);
        if (!s) return KERR_UNKNOWN_MEMBER_ID;
        if (!kstr_eq_c(member_id, s->id)) {
            log_info("group %s: member %.*s of static instance %s is fenced by %s", g->id, member_id.len,
                     member_id.p, s->instance_id, s->id);
            return KERR_FENCED_INSTANCE_ID;
        }
        return KERR_NONE;
    }
    return member_find(g, member_id) ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID;
}

/* GroupMetadata.updateMember: new protocols and timeouts; the member now
 * awaits the join under a new ticket (an older waiting JoinGroup of the same
 * member is answered REBALANCE_IN_PROGRESS, so that its client rejoins). */
static void update_member(gmember_t *m, const gjoin_args_t *a, uint64_t *ticket) {
    member_set_protocols(m, a);
    m->rebalance_timeout_ms = a->rebalance_timeout_ms;
    m->session_timeout_ms = a->session_timeout_ms;
    if (m->join_ticket) answer_put(m->join_ticket, join_error(m->id, KERR_REBALANCE_IN_PROGRESS));
    m->join_ticket = *ticket = next_ticket++;
}

static gmember_t *member_new(char *id, const gjoin_args_t *a) {
    gmember_t *m = xcalloc(1, sizeof *m);
    m->magic = GMEMBER_MAGIC;
    m->id = id;
    m->instance_id = kdup(a->instance_id);
    m->client_id = a->client_id.len >= 0 ? kdup(a->client_id) : xstrdup("");
    m->client_host = xstrdup(a->client_host ? a->client_host : "");
    m->session_timeout_ms = a->session_timeout_ms;
    m->rebalance_timeout_ms = a->rebalance_timeout_ms;
    member_set_protocols(m, a);
    return m;
}

/* GroupCoordinator.addMemberAndRebalance; takes `id`. */
static void add_member_and_rebalance(group_t *g, const gjoin_args_t *a, char *id, uint64_t *ticket) {
    gmember_t *m = member_new(id, a);
    m->is_new = true;
    if (g->state == GS_PREPARING_REBALANCE && g->generation == 0) g->new_member_added = true;
    group_add(g, m, a->protocol_type);
    m->join_ticket = *ticket = next_ticket++;
    /* New members cannot heartbeat yet: their JoinGroup times out instead. */
    m->hb_deadline_ms = clock_fn() + NEW_MEMBER_JOIN_TIMEOUT_MS;
    log_info("group %s: new member %s (instance %s, client %s) joins in state %s", g->id, m->id,
             m->instance_id ? m->instance_id : "-", m->client_id, state_names[g->state]);
    maybe_prepare_rebalance(g, "new member joined");
}

/* GroupCoordinator.updateStaticMemberAndRebalance: a known static member
 * rejoins with an unknown member id; takes `new_id`. */
static ganswer_t *update_static_member(group_t *g, gmember_t *m, char *new_id, const gjoin_args_t *a,
                                       uint64_t *ticket) {
    char *old_leader = xstrdup(g->leader ? g->leader->id : NULL);
    char *old_id = m->id;
    /* replaceStaticMember: fence whatever the old incarnation waits for. */
    if (m->join_ticket) answer_put(m->join_ticket, join_error(old_id, KERR_FENCED_INSTANCE_ID));
    if (m->sync_ticket) answer_put(m->sync_ticket, answer_new(KERR_FENCED_INSTANCE_ID));
    m->join_ticket = m->sync_ticket = 0;
    m->id = new_id;
    m->hb_deadline_ms = clock_fn() + m->session_timeout_ms;
    log_info("group %s: static member %s rejoins as %s in state %s", g->id, m->instance_id, new_id,
             state_names[g->state]);
    /* Saved to revert the update if it cannot be stored. */
    gprotocol_t *old_protocols = m->protocols;
    int old_nprotocols = m->nprotocols;
    int32_t old_rt = m->rebalance_timeout_ms, old_st = m->session_timeout_ms;
    m->protocols = NULL;
    m->nprotocols = 0;
    member_set_protocols(m, a);
    m->rebalance_timeout_ms = a->rebalance_timeout_ms;
    m->session_timeout_ms = a->session_timeout_ms;
    m->join_ticket = *ticket = next_ticket++;
    ganswer_t *ans = NULL;
    switch (g->state) {
    case GS_STABLE: {
        char *next = select_protocol(g);
        bool same = g->protocol && !strcmp(g->protocol, next);
        free(next);
        if (!same) {
            maybe_prepare_rebalance(g, "a static member rejoined with other protocols");
            break;
        }
        if (store_group(g) != 0) {
            /* Revert: the old incarnation keeps its place. */
            for (int i = 0; i < m->nprotocols; i++) {
                free(m->protocols[i].name);
                free(m->protocols[i].metadata);
            }
            free(m->protocols);
            m->protocols = old_protocols;
            m->nprotocols = old_nprotocols;
            old_protocols = NULL;
            m->rebalance_timeout_ms = old_rt;
            m->session_timeout_ms = old_st;
            m->join_ticket = 0;
            m->id = old_id;
            old_id = new_id;
            ans = join_error("", KERR_COORDINATOR_NOT_AVAILABLE);
            ans->generation = g->generation;
            ans->protocol_type = xstrdup(g->protocol_type);
            ans->protocol_name = xstrdup(g->protocol);
            free(ans->leader);
            ans->leader = xstrdup(old_leader ? old_leader : "");
            *ticket = 0;
        } else if (a->supports_skip_assignment) {
            /* v9 (KIP-814): the leader learns it leads but skips the assignor. */
            bool is_leader = g->leader == m;
            answer_join(m, join_answer(g, m, is_leader, is_leader, NULL));
        } else {
            /* Before v9: answer with the old leader id, so that a rejoining
             * leader does not run a trivial assignment the stable group
             * would ignore. */
            answer_join(m, join_answer(g, m, false, false, old_leader ? old_leader : ""));
        }
        break;
    }
    case GS_COMPLETING_REBALANCE:
        /* The leader may have been given the old member id: rebalance. */
        prepare_rebalance(g, "a static member rejoined while completing a rebalance");
        break;
    case GS_PREPARING_REBALANCE:
        break;
    default:
        KS_ASSERT(!"a static member in an empty or dead group");
    }
    if (old_protocols) {
        for (int i = 0; i < old_nprotocols; i++) {
            free(old_protocols[i].name);
            free(old_protocols[i].metadata);
        }
        free(old_protocols);
    }
    free(old_id);
    free(old_leader);
    return ans;
}

/* GroupCoordinator.doNewMemberJoinGroup */
static ganswer_t *new_member_join(group_t *g, const gjoin_args_t *a, uint64_t *ticket) {
    if (g->state == GS_DEAD) return join_error("", KERR_COORDINATOR_NOT_AVAILABLE);
    if (!supports_protocols(g, a)) return join_error("", KERR_INCONSISTENT_GROUP_PROTOCOL);
    char *prefix = a->instance_id.len >= 0 ? kdup(a->instance_id)
                   : a->client_id.len >= 0 ? kdup(a->client_id) : xstrdup("");
    char *id = generate_member_id(prefix);
    free(prefix);
    if (a->instance_id.len >= 0) {
        gmember_t *old = static_member(g, a->instance_id);
        if (old) return update_static_member(g, old, id, a, ticket);
        add_member_and_rebalance(g, a, id, ticket);
        return NULL;
    }
    if (a->require_known_member_id) {
        /* v4+: hand out the id and ask the member to come back with it. */
        pending_add(g, id, clock_fn() + a->session_timeout_ms);
        ganswer_t *ans = join_error(id, KERR_MEMBER_ID_REQUIRED);
        free(id);
        return ans;
    }
    add_member_and_rebalance(g, a, id, ticket);
    return NULL;
}

/* GroupCoordinator.doCurrentMemberJoinGroup */
static ganswer_t *current_member_join(group_t *g, const gjoin_args_t *a, uint64_t *ticket) {
    if (g->state == GS_DEAD) return join_error_k(a->member_id, KERR_COORDINATOR_NOT_AVAILABLE);
    if (!supports_protocols(g, a)) return join_error_k(a->member_id, KERR_INCONSISTENT_GROUP_PROTOCOL);
    int pi = pending_index(g, a->member_id);
    if (pi >= 0) {
        /* A pending member comes back with its id (never a static one). */
        if (a->instance_id.len >= 0) return join_error_k(a->member_id, KERR_UNKNOWN_SERVER_ERROR);
        add_member_and_rebalance(g, a, kdup(a->member_id), ticket);
        return NULL;
    }
    int16_t err = validate_current_member(g, a->member_id, a->instance_id);
    if (err) return join_error_k(a->member_id, err);
    gmember_t *m = member_find(g, a->member_id);
    KS_ASSERT(m != NULL);
    switch (g->state) {
    case GS_PREPARING_REBALANCE:
        update_member(m, a, ticket);
        maybe_prepare_rebalance(g, "member rejoined");
        return NULL;
    case GS_COMPLETING_REBALANCE:
        /* The same metadata: it missed its answer; give it again. */
        if (member_matches(m, a)) return join_answer(g, m, m == g->leader, false, NULL);
        update_member(m, a, ticket);
        maybe_prepare_rebalance(g, "member changed its metadata while completing a rebalance");
        return NULL;
    case GS_STABLE:
        /* The leader rejoining forces a rebalance (e.g. topic metadata
         * changed); so does a member with new metadata. */
        if (m == g->leader || !member_matches(m, a)) {
            update_member(m, a, ticket);
            maybe_prepare_rebalance(g, m == g->leader ? "leader rejoined" : "member changed its metadata");
            return NULL;
        }
        return join_answer(g, m, false, false, NULL);
    default:
        return join_error_k(a->member_id, KERR_UNKNOWN_MEMBER_ID);
    }
}

/* GroupCoordinator.acceptJoiningMember (group.max.size) */
static bool accept_joining_member(group_t *g, kstr_t member_id) {
    int awaiting = 0;
    gmember_t *m;
    switch (g->state) {
    case GS_EMPTY:
    case GS_DEAD:
        return true;
    case GS_PREPARING_REBALANCE:
        m = member_find(g, member_id);
        if (m && m->join_ticket) return true;
        TAILQ_FOREACH(m, &g->members, link) awaiting += m->join_ticket != 0;
        return awaiting < g_group_cfg.max_size;
    default:
        return member_find(g, member_id) || g->nmembers < g_group_cfg.max_size;
    }
}

ganswer_t *group_join(const gjoin_args_t *a, uint64_t *ticket) {
    *ticket = 0;
    int16_t err = group_check(a->group_id, false);
    if (err) return join_error_k(a->member_id, err);
    if (has_nul(a->instance_id) || has_nul(a->member_id)) return join_error_k(a->member_id, KERR_INVALID_REQUEST);
    if (a->session_timeout_ms < g_group_cfg.min_session_timeout_ms ||
        a->session_timeout_ms > g_group_cfg.max_session_timeout_ms)
        return join_error_k(a->member_id, KERR_INVALID_SESSION_TIMEOUT);
    bool unknown = a->member_id.len == 0;
    group_t *g = group_find(a->group_id);
    if (!g) {
        if (!unknown) return join_error_k(a->member_id, KERR_UNKNOWN_MEMBER_ID);
        char *id = kdup(a->group_id);
        g = group_create_c(id);
        free(id);
    }
    if (!accept_joining_member(g, a->member_id)) {
        gmember_t *m = member_find(g, a->member_id);
        if (m) member_remove(g, m);
        group_arm(g);
        return join_error("", KERR_GROUP_MAX_SIZE_REACHED);
    }
    uint64_t mine = 0;
    ganswer_t *ans = unknown ? new_member_join(g, a, &mine) : current_member_join(g, a, &mine);
    if (g->state == GS_PREPARING_REBALANCE) try_complete_join(g);
    group_arm(g);
    if (ans) return ans;
    KS_ASSERT(mine != 0);
    ans = answer_take(mine);
    if (ans) return ans;
    *ticket = mine;
    return NULL;
}

ganswer_t *group_poll(kstr_t group_id, uint64_t ticket) {
    ganswer_t *a = answer_take(ticket);
    if (a) return a;
    group_t *g = group_find(group_id);
    if (g) {
        gmember_t *m;
        TAILQ_FOREACH(m, &g->members, link)
            if (m->join_ticket == ticket || m->sync_ticket == ticket) return NULL;
    }
    return join_error("", KERR_UNKNOWN_MEMBER_ID);
}

/* ---- SyncGroup ---- */

ganswer_t *group_sync(const gsync_args_t *a, uint64_t *ticket) {
    *ticket = 0;
    int16_t err = group_check(a->group_id, false);
    if (err) return answer_new(err);
    group_t *g = group_find(a->group_id);
    if (!g) return answer_new(KERR_UNKNOWN_MEMBER_ID);
    if (g->state == GS_DEAD) return answer_new(KERR_COORDINATOR_NOT_AVAILABLE);
    err = validate_current_member(g, a->member_id, a->instance_id);
    if (err) return answer_new(err);
    if (a->generation != g->generation) return answer_new(KERR_ILLEGAL_GENERATION);
    if (a->protocol_type.len >= 0 && (!g->protocol_type || !kstr_eq_c(a->protocol_type, g->protocol_type)))
        return answer_new(KERR_INCONSISTENT_GROUP_PROTOCOL);
    if (a->protocol_name.len >= 0 && (!g->protocol || !kstr_eq_c(a->protocol_name, g->protocol)))
        return answer_new(KERR_INCONSISTENT_GROUP_PROTOCOL);
    gmember_t *m = member_find(g, a->member_id);
    KS_ASSERT(m != NULL);
    switch (g->state) {
    case GS_EMPTY: return answer_new(KERR_UNKNOWN_MEMBER_ID);
    case GS_PREPARING_REBALANCE: return answer_new(KERR_REBALANCE_IN_PROGRESS);
    case GS_STABLE: {
        m->pending_sync = false;
        ganswer_t *ans = answer_new(KERR_NONE);
        ans->protocol_type = xstrdup(g->protocol_type);
        ans->protocol_name = xstrdup(g->protocol);
        ans->assignment_len = m->assignment_len;
        ans->assignment = bdup(m->assignment, m->assignment_len);
        m->hb_deadline_ms = clock_fn() + m->session_timeout_ms;
        return ans;
    }
    case GS_COMPLETING_REBALANCE:
        break;
    default:
        KS_ASSERT(!"SyncGroup in a dead group");
    }
    if (m->sync_ticket) answer_put(m->sync_ticket, answer_new(KERR_REBALANCE_IN_PROGRESS));
    uint64_t mine = m->sync_ticket = next_ticket++;
    m->pending_sync = false;
    bool all_synced = true;
    gmember_t *x;
    TAILQ_FOREACH(x, &g->members, link) all_synced &= !x->pending_sync;
    if (all_synced) g->sync_deadline_ms = 0;
    if (m == g->leader) {
        log_info("group %s: assignment received from leader %s for generation %d (%d member(s))", g->id, m->id,
                 g->generation, g->nmembers);
        /* Every member gets the leader's bytes for it, unchanged; members
         * the leader left out get an empty assignment. */
        TAILQ_FOREACH(x, &g->members, link) {
            const gassignment_t *found = NULL;
            for (int i = 0; i < a->nassignments; i++)
                if (kstr_eq_c(a->assignments[i].member_id, x->id)) found = &a->assignments[i];
            free(x->assignment);
            x->assignment_len = found && found->assignment.len > 0 ? found->assignment.len : 0;
            x->assignment = x->assignment_len ? bdup(found->assignment.p, x->assignment_len) : NULL;
            if (!found) log_warn("group %s: empty assignment for member %s (the leader left it out)", g->id, x->id);
        }
        int64_t prev_ms = g->state_ms;
        g->state_ms = clock_fn();
        if (store_group(g) != 0) {
            g->state_ms = prev_ms;
            reset_assignment_error(g, KERR_COORDINATOR_NOT_AVAILABLE);
            maybe_prepare_rebalance(g, "cannot store the group's assignment");
        } else {
            propagate_assignment(g, KERR_NONE);
            set_state(g, GS_STABLE);
        }
    }
    group_arm(g);
    ganswer_t *ans = answer_take(mine);
    if (ans) return ans;
    *ticket = mine;
    return NULL;
}

/* ---- Heartbeat, LeaveGroup ---- */

int16_t group_heartbeat(kstr_t group_id, kstr_t member_id, kstr_t instance_id, int32_t generation) {
    int16_t err = group_check(group_id, false);
    if (err) return err;
    group_t *g = group_find(group_id);
    if (!g) return KERR_UNKNOWN_MEMBER_ID;
    if (g->state == GS_DEAD) return KERR_COORDINATOR_NOT_AVAILABLE;
    err = validate_current_member(g, member_id, instance_id);
    if (err) return err;
    if (generation != g->generation) return KERR_ILLEGAL_GENERATION;
    if (g->state == GS_EMPTY) return KERR_UNKNOWN_MEMBER_ID;
    gmember_t *m = member_find(g, member_id);
    KS_ASSERT(m != NULL);
    /* The deadline only moves later: the armed timer stays valid. */
    m->hb_deadline_ms = clock_fn() + m->session_timeout_ms;
    return g->state == GS_PREPARING_REBALANCE ? KERR_REBALANCE_IN_PROGRESS : KERR_NONE;
}

int16_t group_leave(kstr_t group_id, gleave_t *leaving, int n) {
    int16_t err = group_check(group_id, false);
    if (err) return err;
    group_t *g = group_find(group_id);
    if (!g) {
        for (int i = 0; i < n; i++) leaving[i].error = KERR_UNKNOWN_MEMBER_ID;
        return KERR_NONE;
    }
    if (g->state == GS_DEAD) return KERR_COORDINATOR_NOT_AVAILABLE;
    for (int i = 0; i < n; i++) {
        gleave_t *l = &leaving[i];
        l->error = KERR_NONE;
        gmember_t *m = NULL;
        if (l->member_id.len <= 0) {
            /* Administrative removal by group.instance.id. */
            m = static_member(g, l->instance_id);
            if (!m) { l->error = KERR_UNKNOWN_MEMBER_ID; continue; }
        } else {
            int pi = pending_index(g, l->member_id);
            if (pi >= 0) {
                log_info("group %s: pending member %s left", g->id, g->pending[pi].id);
                pending_remove_at(g, pi);
                if (g->state == GS_PREPARING_REBALANCE) try_complete_join(g);
                continue;
            }
            l->error = validate_current_member(g, l->member_id, l->instance_id);
            if (l->error) continue;
            m = member_find(g, l->member_id);
        }
        log_info("group %s: member %s left (LeaveGroup)", g->id, m->id);
        remove_member_and_update(g, m, "member left the group");
    }
    group_arm(g);
    return KERR_NONE;
}

/* ---- offsets ---- */

static uint32_t offset_hash(const char *topic, size_t n, int32_t partition) {
    return fnv(topic, n) ^ ((uint32_t)partition * 2654435761u);
}

static goffset_t *offset_find(group_t *g, kstr_t topic, int32_t partition) {
    if (!g->nobuckets || topic.len < 0) return NULL;
    for (goffset_t *o = g->obuckets[offset_hash(topic.p, (size_t)topic.len, partition) % g->nobuckets]; o;
         o = o->next)
        if (o->partition == partition && kstr_eq_c(topic, o->topic)) return o;
    return NULL;
}

static void offsets_grow(group_t *g) {
    uint32_t nb = g->nobuckets ? 2 * g->nobuckets : 16;
    goffset_t **b = xcalloc(nb, sizeof *b);
    for (uint32_t i = 0; i < g->nobuckets; i++) {
        goffset_t *o = g->obuckets[i];
        while (o) {
            goffset_t *n = o->next;
            uint32_t h = offset_hash(o->topic, strlen(o->topic), o->partition) % nb;
            o->next = b[h];
            b[h] = o;
            o = n;
        }
    }
    free(g->obuckets);
    g->obuckets = b;
    g->nobuckets = nb;
}

/* Sets (or replaces) a committed offset in memory. */
static void offset_set(group_t *g, const mg_offset_t *mo) {
    kstr_t topic = kstr_c(mo->topic);
    goffset_t *o = offset_find(g, topic, mo->partition);
    if (!o) {
        if (g->noffsets + 1 > 2 * g->nobuckets) offsets_grow(g);
        o = xcalloc(1, sizeof *o);
        o->topic = xstrdup(mo->topic);
        o->partition = mo->partition;
        uint32_t h = offset_hash(o->topic, strlen(o->topic), o->partition) % g->nobuckets;
        o->next = g->obuckets[h];
        g->obuckets[h] = o;
        g->noffsets++;
    }
    memcpy(o->topic_id, mo->topic_id, 16);
    o->offset = mo->offset;
    o->leader_epoch = mo->leader_epoch;
    free(o->metadata);
    o->metadata = mo->metadata ? (char *)bdup(mo->metadata, mo->metadata_len) : NULL;
    o->metadata_len = mo->metadata ? mo->metadata_len : 0;
    o->commit_ms = mo->commit_ms;
    o->expire_ms = mo->expire_ms;
}

static void offset_remove(group_t *g, goffset_t *target) {
    uint32_t h = offset_hash(target->topic, strlen(target->topic), target->partition) % g->nobuckets;
    for (goffset_t **pp = &g->obuckets[h]; *pp; pp = &(*pp)->next)
        if (*pp == target) {
            *pp = target->next;
            free(target->topic);
            free(target->metadata);
            free(target);
            g->noffsets--;
            return;
        }
}

/* Whether a stored offset still belongs to a live topic (a deleted topic's
 * offsets are gone, as Kafka removes them; a re-created topic is another). */
static bool offset_live(const goffset_t *o) {
    static const uint8_t zero[16];
    topic_t *t = topic_find(kstr_c(o->topic));
    if (!t || o->partition < 0 || o->partition >= t->npartitions) return false;
    return !memcmp(o->topic_id, zero, 16) || !memcmp(o->topic_id, t->id.b, 16);
}

/* GroupCoordinator.validateOffsetCommit */
static int16_t validate_offset_commit(group_t *g, int32_t generation, kstr_t member_id, kstr_t instance_id) {
    if (g->state == GS_DEAD) return KERR_COORDINATOR_NOT_AVAILABLE;
    if (generation < 0 && g->state == GS_EMPTY) return KERR_NONE; /* assign() mode, admin clients */
    if (generation >= 0 || member_id.len > 0 || instance_id.len >= 0) {
        int16_t err = validate_current_member(g, member_id, instance_id);
        if (err) return err;
        return generation != g->generation ? KERR_ILLEGAL_GENERATION : KERR_NONE;
    }
    return g->state != GS_EMPTY ? KERR_UNKNOWN_MEMBER_ID : KERR_NONE;
}

void group_commit(kstr_t group_id, kstr_t member_id, kstr_t instance_id, int32_t generation, gcommit_t *c, int n) {
    int64_t now = clock_fn();
    int valid = 0;
    for (int i = 0; i < n; i++) {
        topic_t *t = topic_find(c[i].topic);
        c[i].error = (!t || c[i].partition < 0 || c[i].partition >= t->npartitions) ? KERR_UNKNOWN_TOPIC_OR_PARTITION
                                                                                  : KERR_NONE;
        valid += c[i].error == KERR_NONE;
    }
    int16_t err = group_check(group_id, true);
    group_t *g = err ? NULL : group_find(group_id);
    if (!err && !g) {
        if (generation < 0) {
            /* The group does not use Kafka's group management: allow it. */
            char *id = kdup(group_id);
            g = group_create_c(id);
            free(id);
            log_info("group %s: created by a manual offset commit", g->id);
        } else {
            err = KERR_ILLEGAL_GENERATION;
        }
    }
    if (!err) err = validate_offset_commit(g, generation, member_id, instance_id);
    if (!err) {
        if (g->state == GS_COMPLETING_REBALANCE) {
            err = KERR_REBALANCE_IN_PROGRESS;
        } else if (g->state == GS_STABLE || g->state == GS_PREPARING_REBALANCE) {
            gmember_t *m = member_find(g, member_id);
            if (!m) m = static_member(g, instance_id);
            if (m) m->hb_deadline_ms = now + m->session_timeout_ms;
        }
    }
    if (err) {
        for (int i = 0; i < n; i++)
            if (c[i].error == KERR_NONE) c[i].error = err;
        return;
    }
    if (!valid) return;
    mg_offset_t *mo = xcalloc((size_t)valid, sizeof *mo);
    char **topics = xcalloc((size_t)valid, sizeof *topics);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (c[i].error) continue;
        if (c[i].metadata.len > g_group_cfg.offset_metadata_max_bytes) {
            c[i].error = KERR_OFFSET_METADATA_TOO_LARGE;
            continue;
        }
        topic_t *t = topic_find(c[i].topic);
        topics[k] = kdup(c[i].topic);
        mo[k] = (mg_offset_t){
            .topic = topics[k], .partition = c[i].partition, .offset = c[i].offset,
            .leader_epoch = c[i].leader_epoch,
            .metadata = c[i].metadata.len < 0 ? NULL : c[i].metadata.p ? c[i].metadata.p : "",
            .metadata_len = c[i].metadata.len >= 0 ? c[i].metadata.len : 0,
            .commit_ms = c[i].commit_ms >= 0 ? c[i].commit_ms : now, .expire_ms = c[i].expire_ms};
        memcpy(mo[k].topic_id, t->id.b, 16);
        k++;
    }
    if (k && store && meta_groups_put_offsets(store, g->id, mo, k) != 0) {
        log_error("group %s: cannot write %d committed offset(s) to the metadata store", g->id, k);
        for (int i = 0; i < n; i++)
            if (!c[i].error) c[i].error = KERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        for (int i = 0; i < k; i++) offset_set(g, &mo[i]);
    }
    for (int i = 0; i < k; i++) free(topics[i]);
    free(topics);
    free(mo);
}

static void fetched_from(gfetched_t *f, const goffset_t *o) {
    f->offset = o->offset;
    f->leader_epoch = o->leader_epoch;
    f->metadata = o->metadata ? (kstr_t){o->metadata, o->metadata_len} : KSTR_LIT("");
    f->error = KERR_NONE;
}

int16_t group_fetch_offsets(kstr_t group_id, gfetched_t *f, int n) {
    int16_t err = group_check(group_id, true);
    if (err) return err;
    group_t *g = group_find(group_id);
    for (int i = 0; i < n; i++) {
        f[i].offset = -1;
        f[i].leader_epoch = -1;
        f[i].metadata = KSTR_LIT("");
        f[i].error = KERR_NONE;
        goffset_t *o = g && g->state != GS_DEAD ? offset_find(g, f[i].topic, f[i].partition) : NULL;
        if (o && offset_live(o)) fetched_from(&f[i], o);
    }
    return KERR_NONE;
}

static int fetched_cmp(const void *a, const void *b) {
    const gfetched_t *x = a, *y = b;
    int32_t n = x->topic.len < y->topic.len ? x->topic.len : y->topic.len;
    int c = memcmp(x->topic.p, y->topic.p, (size_t)n);
    if (c) return c;
    if (x->topic.len != y->topic.len) return x->topic.len < y->topic.len ? -1 : 1;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

int16_t group_fetch_all_offsets(kstr_t group_id, gfetched_t **out, int *n) {
    *out = NULL;
    *n = 0;
    int16_t err = group_check(group_id, true);
    if (err) return err;
    group_t *g = group_find(group_id);
    if (!g || g->state == GS_DEAD || !g->noffsets) return KERR_NONE;
    gfetched_t *f = xcalloc(g->noffsets, sizeof *f);
    int k = 0;
    for (uint32_t b = 0; b < g->nobuckets; b++)
        for (goffset_t *o = g->obuckets[b]; o; o = o->next) {
            if (!offset_live(o)) continue;
            f[k].topic = kstr_c(o->topic);
            f[k].partition = o->partition;
            fetched_from(&f[k], o);
            k++;
        }
    qsort(f, (size_t)k, sizeof *f, fetched_cmp);
    *out = f;
    *n = k;
    return KERR_NONE;
}

/* Removes offsets of `g` (journal first); `which` lists them. */
static int remove_offsets(group_t *g, goffset_t **which, int n) {
    if (!n) return 0;
    if (store) {
        mg_offset_t *mo = xcalloc((size_t)n, sizeof *mo);
        for (int i = 0; i < n; i++) mo[i] = (mg_offset_t){.topic = which[i]->topic, .partition = which[i]->partition};
        int rc = meta_groups_delete_offsets(store, g->id, mo, n);
        free(mo);
        if (rc) {
            log_error("group %s: cannot record the removal of %d offset(s) in the metadata store", g->id, n);
            return -1;
        }
    }
    for (int i = 0; i < n; i++) offset_remove(g, which[i]);
    return 0;
}

int16_t group_delete_offsets(kstr_t group_id, gdelete_offset_t *d, int n) {
    int16_t err = group_check(group_id, false);
    if (err) return err;
    group_t *g = group_find(group_id);
    if (!g || g->state == GS_DEAD) return KERR_GROUP_ID_NOT_FOUND;
    bool consumer = g->protocol_type && !strcmp(g->protocol_type, CONSUMER_PROTOCOL);
    if (g->state != GS_EMPTY && !consumer) return KERR_NON_EMPTY_GROUP;
    goffset_t **which = xcalloc((size_t)n, sizeof *which);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!topic_find(d[i].topic)) { d[i].error = KERR_UNKNOWN_TOPIC_OR_PARTITION; continue; }
        if (g->state != GS_EMPTY && is_subscribed(g, d[i].topic)) {
            d[i].error = KERR_GROUP_SUBSCRIBED_TO_TOPIC;
            continue;
        }
        d[i].error = KERR_NONE;
        goffset_t *o = offset_find(g, d[i].topic, d[i].partition);
        bool dup = false;
        for (int j = 0; j < k && o && !dup; j++) dup = which[j] == o;
        if (o && !dup) which[k++] = o;
    }
    int rc = remove_offsets(g, which, k);
    free(which);
    if (rc) {
        for (int i = 0; i < n; i++)
            if (!d[i].error) d[i].error = KERR_COORDINATOR_NOT_AVAILABLE;
    } else if (k) {
        log_info("group %s: %d offset(s) deleted (OffsetDelete)", g->id, k);
    }
    return KERR_NONE;
}

/* ---- describe, list, delete ---- */

int16_t group_describe(kstr_t group_id, const group_t **out) {
    *out = NULL;
    int16_t err = group_check(group_id, true);
    if (err) return err;
    *out = group_find(group_id);
    return KERR_NONE;
}

const group_t *groups_first(void) { return TAILQ_FIRST(&all_groups); }
const group_t *groups_next(const group_t *g) { return TAILQ_NEXT(g, link); }

/* A group becomes Dead and goes away (journal first). */
static int group_drop(group_t *g, const char *why) {
    if (store && meta_groups_delete_group(store, g->id) != 0) {
        log_error("group %s: cannot record its deletion in the metadata store", g->id);
        return -1;
    }
    log_info("group %s: deleted (%s), %u offset(s) removed", g->id, why, g->noffsets);
    set_state(g, GS_DEAD);
    group_free(g);
    return 0;
}

int16_t group_delete(kstr_t group_id) {
    int16_t err = group_check(group_id, true);
    if (err) return err;
    group_t *g = group_find(group_id);
    if (!g || g->state == GS_DEAD) return KERR_GROUP_ID_NOT_FOUND;
    if (g->state != GS_EMPTY) return KERR_NON_EMPTY_GROUP;
    return group_drop(g, "DeleteGroups") ? KERR_COORDINATOR_NOT_AVAILABLE : KERR_NONE;
}

/* ---- retention ---- */

/* GroupMetadata.removeExpiredOffsets, plus offsets of deleted topics. */
int group_expire_offsets(int64_t now) {
    int removed = 0;
    int64_t retention = g_group_cfg.offsets_retention_ms;
    group_t *g, *tmp;
    TAILQ_FOREACH_SAFE(g, &all_groups, link, tmp) {
        bool consumer = g->protocol_type && !strcmp(g->protocol_type, CONSUMER_PROTOCOL);
        /* 0: by the time the group became empty; 1: unsubscribed topics by
         * commit time; 2: by commit time (no protocol); 3: never */
        int mode;
        if (g->protocol_type && g->state == GS_EMPTY) mode = 0;
        else if (consumer && g->subscribed_known && g->state == GS_STABLE) mode = 1;
        else if (!g->protocol_type) mode = 2;
        else mode = 3;
        goffset_t **which = g->noffsets ? xcalloc(g->noffsets, sizeof *which) : NULL;
        int k = 0;
        for (uint32_t b = 0; b < g->nobuckets; b++)
            for (goffset_t *o = g->obuckets[b]; o; o = o->next) {
                bool expired = false;
                if (!offset_live(o)) {
                    expired = true;
                } else if (mode != 3 && !(mode == 1 && is_subscribed(g, kstr_c(o->topic)))) {
                    if (o->expire_ms >= 0) expired = now >= o->expire_ms;
                    else expired = now - (mode == 0 ? g->state_ms : o->commit_ms) >= retention;
                }
                if (expired) which[k++] = o;
            }
        if (k && remove_offsets(g, which, k) == 0) {
            removed += k;
            log_info("group %s: %d offset(s) expired", g->id, k);
        }
        free(which);
        if (g->state == GS_EMPTY && g->noffsets == 0) group_drop(g, "empty, no offsets left");
    }
    return removed;
}

static void retention_cb(evutil_socket_t fd, short what, void *arg) {
    group_expire_offsets(clock_fn());
    int64_t iv = g_group_cfg.retention_check_interval_ms;
    struct timeval tv = {iv / 1000, (iv % 1000) * 1000};
    evtimer_add(retention_timer, &tv);
}

/* ---- metrics ---- */

/* kafscale_consumer_group_lag at scrape time: per committed offset, the
 * partition's high watermark minus the offset. */
static void lag_collector(void *arg) {
    metrics_clear(M_GROUP_LAG);
    const group_t *g;
    TAILQ_FOREACH(g, &all_groups, link)
        for (uint32_t b = 0; b < g->nobuckets; b++)
            for (const goffset_t *o = g->obuckets[b]; o; o = o->next) {
                if (!offset_live(o)) continue;
                partition_t *p = partition_find(kstr_c(o->topic), o->partition);
                /* The end offset is known where the partition is led: in a
                 * cluster the coordinator reports lag for those only. */
                if (!p || !partition_serves_reads(p)) continue;
                metrics_set_group_lag(g->id, o->topic, o->partition, max64(p->log.hw - o->offset, 0));
            }
}

/* ---- loading, life cycle ---- */

static void load_group(void *arg, const mg_group_t *mg) {
    int64_t now = clock_fn();
    group_t *g = group_find(kstr_c(mg->group_id));
    if (g) group_free(g);
    g = group_create_c(mg->group_id);
    g->protocol_type = xstrdup(mg->protocol_type);
    g->generation = mg->generation;
    g->protocol = mg->nmembers ? xstrdup(mg->protocol) : NULL;
    for (int i = 0; i < mg->nmembers; i++) {
        const mg_member_t *mm = &mg->members[i];
        gmember_t *m = xcalloc(1, sizeof *m);
        m->magic = GMEMBER_MAGIC;
        m->id = xstrdup(mm->member_id);
        m->instance_id = xstrdup(mm->instance_id);
        m->client_id = xstrdup(mm->client_id ? mm->client_id : "");
        m->client_host = xstrdup(mm->client_host ? mm->client_host : "");
        m->session_timeout_ms = mm->session_timeout_ms;
        m->rebalance_timeout_ms = mm->rebalance_timeout_ms;
        m->nprotocols = 1;
        m->protocols = xcalloc(1, sizeof *m->protocols);
        m->protocols[0].name = xstrdup(mg->protocol ? mg->protocol : "");
        m->protocols[0].len = mm->subscription_len;
        m->protocols[0].metadata = bdup(mm->subscription, mm->subscription_len);
        m->assignment_len = mm->assignment_len;
        m->assignment = mm->assignment_len ? bdup(mm->assignment, mm->assignment_len) : NULL;
        /* onGroupLoaded: every member must heartbeat within its session. */
        m->hb_deadline_ms = now + m->session_timeout_ms;
        TAILQ_INSERT_TAIL(&g->members, m, link);
        g->nmembers++;
        if (mg->leader && !strcmp(mg->leader, m->id)) g->leader = m;
    }
    if (g->nmembers && !g->leader) g->leader = TAILQ_FIRST(&g->members);
    g->state = g->nmembers ? GS_STABLE : GS_EMPTY;
    g->state_ms = mg->state_ms > 0 ? mg->state_ms : now;
    compute_subscribed(g);
}

static void load_offset(void *arg, const char *group_id, const mg_offset_t *mo) {
    group_t *g = group_find(kstr_c(group_id));
    if (!g) g = group_create_c(group_id);
    offset_set(g, mo);
    (*(int *)arg)++;
}

static void groups_free_all(void) {
    group_t *g;
    while ((g = TAILQ_FIRST(&all_groups))) group_free(g);
    ganswer_t *a;
    while ((a = TAILQ_FIRST(&answers))) {
        answer_unlink(a);
        group_answer_free(a);
    }
}

void group_init_memory(int64_t (*clock)(void)) {
    groups_free_all();
    clock_fn = clock ? clock : now_ms;
    if (store) meta_groups_close(store);
    store = NULL;
}

int group_init(void) {
    g_group_cfg.min_session_timeout_ms =
        (int32_t)env_int("KAFSCALE_GROUP_MIN_SESSION_TIMEOUT_MS", 6000, 1, INT32_MAX);
    g_group_cfg.max_session_timeout_ms =
        (int32_t)env_int("KAFSCALE_GROUP_MAX_SESSION_TIMEOUT_MS", 1800000, g_group_cfg.min_session_timeout_ms,
                         INT32_MAX);
    g_group_cfg.initial_rebalance_delay_ms =
        (int32_t)env_int("KAFSCALE_GROUP_INITIAL_REBALANCE_DELAY_MS", 3000, 0, INT32_MAX);
    g_group_cfg.max_size = (int32_t)env_int("KAFSCALE_GROUP_MAX_SIZE", INT32_MAX, 1, INT32_MAX);
    g_group_cfg.offsets_retention_ms =
        env_int("KAFSCALE_OFFSETS_RETENTION_MINUTES", 10080, 1, 1LL << 40) * 60 * 1000;
    g_group_cfg.retention_check_interval_ms =
        env_int("KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS", 600000, 1, 86400000LL * 365);
    g_group_cfg.offset_metadata_max_bytes =
        (int32_t)env_int("KAFSCALE_OFFSET_METADATA_MAX_BYTES", 4096, 0, 1 << 20);
    char err[512];
    store = meta_groups_open(g_broker.cfg.data_dir, err, sizeof err);
    if (!store) { log_error("metadata: %s", err); return -1; }
    int noffsets = 0;
    mg_load_cb_t cb = {load_group, load_offset, &noffsets};
    /* A cluster loads each group when it becomes its coordinator. */
    if (!cluster_enabled() && meta_groups_load(store, &cb, err, sizeof err)) {
        log_error("metadata: %s", err);
        return -1;
    }
    if (ngroups) log_info("metadata: restored %d group(s) with %d committed offset(s)", ngroups, noffsets);
    group_t *g;
    TAILQ_FOREACH(g, &all_groups, link) group_arm(g);
    metrics_add_collector(lag_collector, NULL);
    if (g_broker.base) {
        retention_timer = evtimer_new(g_broker.base, retention_cb, NULL);
        KS_ASSERT(retention_timer != NULL);
        int64_t iv = g_group_cfg.retention_check_interval_ms;
        struct timeval tv = {iv / 1000, (iv % 1000) * 1000};
        evtimer_add(retention_timer, &tv);
    }
    return 0;
}

void group_shutdown(void) {
    groups_free_all();
    if (retention_timer) event_free(retention_timer);
    retention_timer = NULL;
    meta_groups_close(store);
    store = NULL;
}
