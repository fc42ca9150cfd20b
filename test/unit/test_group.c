/* test_group.c - unit tests of the group coordinator (broker/group.c) and of
 * its store (common/meta_groups.c).
 *
 * The coordinator runs on a fake clock: tests move `fake_now` and call
 * group_tick() where the broker's timers would fire. Waiting JoinGroup /
 * SyncGroup requests are tickets, polled with group_poll() as a parked
 * handler would. Topics t1 (3 partitions) and t2 (1) exist in every test.
 *
 * Covered: the join/sync round trip and MEMBER_ID_REQUIRED; the leader
 * getting every member's metadata and the assignments going out unchanged;
 * a rebalance waiting for every member, and the rebalance timeout removing
 * the one that did not rejoin; session expiry; LeaveGroup (by member id and
 * by group.instance.id); static members rejoining without a rebalance and
 * fencing their old incarnation; the pending-sync timeout; protocol
 * selection and inconsistent protocols; generation and member checks on
 * Heartbeat, SyncGroup and OffsetCommit; assign()-mode commits; OffsetFetch
 * -1 for unknown partitions; offsets of deleted topics; retention of empty
 * and standalone groups; DeleteGroups and OffsetDelete; restart from the
 * journal; journal compaction and a torn tail.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "group.h"
#include "meta_groups.h"

static int64_t fake_now = 1700000000000LL;
static int64_t fake_clock(void) { return fake_now; }

#define DELAY 3000 /* the default initial rebalance delay */

static void setup(void) {
    log_level = LOG_ERROR; /* the coordinator logs every rebalance */
    fake_now = 1700000000000LL;
    g_group_cfg = (group_config_t){6000, 1800000, DELAY, INT32_MAX, 7LL * 24 * 3600 * 1000, 600000, 4096};
    group_init_memory(fake_clock);
    topics_init();
    const char *msg;
    ck_assert_int_eq(topic_create(KSTR_LIT("t1"), 3, NULL, NULL, 0, false, NULL, &msg), KERR_NONE);
    ck_assert_int_eq(topic_create(KSTR_LIT("t2"), 1, NULL, NULL, 0, false, NULL, &msg), KERR_NONE);
}

static void teardown(void) {
    group_init_memory(NULL);
    topics_shutdown();
}

static void advance(int64_t ms) {
    fake_now += ms;
    group_tick(fake_now);
}

/* ---- helpers that play a client ---- */

typedef struct client {
    char member_id[128];
    const char *instance;
    int32_t generation;
    uint64_t ticket;
    ganswer_t *answer; /* the last answer (owned) */
    const char *protocols[2];
    const char *metadata[2];
    int nprotocols;
} client_t;

static kstr_t opt(const char *s) { return s ? kstr_c(s) : KSTR_NULL; }

static void take(client_t *c, ganswer_t *a) {
    group_answer_free(c->answer);
    c->answer = a;
    if (a && a->error == KERR_NONE && a->member_id && a->member_id[0]) {
        snprintf(c->member_id, sizeof c->member_id, "%s", a->member_id);
        c->generation = a->generation;
    }
}

/* Sends a JoinGroup; returns the error, or -100 when it waits. */
static int join_as(client_t *c, const char *group, bool v4, int32_t session_ms, int32_t rebalance_ms) {
    kstr_t names[2];
    kbytes_t metas[2];
    int n = c->nprotocols ? c->nprotocols : 1;
    for (int i = 0; i < n; i++) {
        names[i] = kstr_c(c->nprotocols ? c->protocols[i] : "range");
        const char *m = c->nprotocols ? c->metadata[i] : "meta";
        metas[i] = (kbytes_t){(const uint8_t *)m, (int32_t)strlen(m)};
    }
    gjoin_args_t a = {
        .group_id = kstr_c(group), .member_id = kstr_c(c->member_id), .instance_id = opt(c->instance),
        .client_id = KSTR_LIT("cli"), .client_host = "/127.0.0.1", .session_timeout_ms = session_ms,
        .rebalance_timeout_ms = rebalance_ms, .protocol_type = KSTR_LIT("consumer"), .nprotocols = n,
        .protocol_names = names, .protocol_metadata = metas,
        .require_known_member_id = v4 && !c->instance, .supports_skip_assignment = false};
    ganswer_t *ans = group_join(&a, &c->ticket);
    if (!ans) return -100;
    c->ticket = 0;
    take(c, ans);
    if (ans->error == KERR_MEMBER_ID_REQUIRED) snprintf(c->member_id, sizeof c->member_id, "%s", ans->member_id);
    return ans->error;
}

static int join(client_t *c, const char *group) { return join_as(c, group, false, 10000, 20000); }

/* Polls a waiting ticket; returns the error, or -100 while it waits. */
static int poll(client_t *c, const char *group) {
    ck_assert(c->ticket != 0);
    ganswer_t *a = group_poll(kstr_c(group), c->ticket);
    if (!a) return -100;
    c->ticket = 0;
    take(c, a);
    return a->error;
}

static int sync_as(client_t *c, const char *group, int n, client_t **to, const char **bytes) {
    gassignment_t as[8];
    for (int i = 0; i < n; i++)
        as[i] = (gassignment_t){kstr_c(to[i]->member_id), {(const uint8_t *)bytes[i], (int32_t)strlen(bytes[i])}};
    gsync_args_t a = {.group_id = kstr_c(group), .generation = c->generation, .member_id = kstr_c(c->member_id),
                      .instance_id = opt(c->instance), .protocol_type = KSTR_NULL, .protocol_name = KSTR_NULL,
                      .nassignments = n, .assignments = as};
    ganswer_t *ans = group_sync(&a, &c->ticket);
    if (!ans) return -100;
    c->ticket = 0;
    take(c, ans);
    return ans->error;
}

static int heartbeat(client_t *c, const char *group) {
    return group_heartbeat(kstr_c(group), kstr_c(c->member_id), opt(c->instance), c->generation);
}

static const group_t *find(const char *id) {
    const group_t *g;
    ck_assert_int_eq(group_describe(kstr_c(id), &g), KERR_NONE);
    return g;
}

static bool assignment_is(client_t *c, const char *bytes) {
    return c->answer && c->answer->assignment_len == (int32_t)strlen(bytes) &&
           !memcmp(c->answer->assignment, bytes, strlen(bytes));
}

static void drop(client_t *c) {
    group_answer_free(c->answer);
    c->answer = NULL;
}

/* Forms a stable group of n dynamic members (v3 joins, 0 ms initial delay). */
static void form(const char *group, client_t *cs, int n) {
    g_group_cfg.initial_rebalance_delay_ms = 0;
    for (int i = 0; i < n; i++) ck_assert_int_eq(join(&cs[i], group), -100);
    advance(0);
    for (int i = 0; i < n; i++) ck_assert_int_eq(poll(&cs[i], group), KERR_NONE);
    client_t *to[8];
    const char *bytes[8] = {"A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7"};
    for (int i = 0; i < n; i++) to[i] = &cs[i];
    int leader = -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(cs[i].answer->leader, cs[i].member_id)) leader = i;
    ck_assert_int_ge(leader, 0);
    for (int i = 0; i < n; i++)
        if (i != leader) ck_assert_int_eq(sync_as(&cs[i], group, 0, NULL, NULL), -100);
    ck_assert_int_eq(sync_as(&cs[leader], group, n, to, bytes), KERR_NONE);
    for (int i = 0; i < n; i++)
        if (i != leader) ck_assert_int_eq(poll(&cs[i], group), KERR_NONE);
    ck_assert_int_eq(find(group)->state, GS_STABLE);
}

/* ---- membership ---- */

START_TEST(join_waits_initial_delay_then_leader_gets_members) {
    client_t a;
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(join(&a, "g"), -100);
    ck_assert_int_eq(find("g")->state, GS_PREPARING_REBALANCE);
    advance(DELAY - 1);
    ck_assert_int_eq(poll(&a, "g"), -100);
    advance(1);
    ck_assert_int_eq(poll(&a, "g"), KERR_NONE);
    ck_assert_int_eq(a.answer->generation, 1);
    ck_assert_str_eq(a.answer->leader, a.member_id);
    ck_assert_str_eq(a.answer->protocol_name, "range");
    ck_assert_int_eq(a.answer->nmembers, 1);
    ck_assert_int_eq(a.answer->members[0].len, 4);
    ck_assert(!memcmp(a.answer->members[0].metadata, "meta", 4));
    ck_assert(!strncmp(a.member_id, "cli-", 4));
    ck_assert_int_eq(find("g")->state, GS_COMPLETING_REBALANCE);
    client_t *to[1] = {&a};
    const char *bytes[1] = {"assign-a"};
    ck_assert_int_eq(sync_as(&a, "g", 1, to, bytes), KERR_NONE);
    ck_assert(assignment_is(&a, "assign-a"));
    ck_assert_str_eq(a.answer->protocol_type, "consumer");
    ck_assert_int_eq(find("g")->state, GS_STABLE);
    ck_assert_int_eq(heartbeat(&a, "g"), KERR_NONE);
    drop(&a);
}
END_TEST

START_TEST(member_id_required_from_v4) {
    client_t a;
    memset(&a, 0, sizeof a);
    ck_assert_int_eq(join_as(&a, "g", true, 10000, 20000), KERR_MEMBER_ID_REQUIRED);
    ck_assert(a.member_id[0]);
    ck_assert_int_eq(find("g")->nmembers, 0);
    ck_assert_int_eq(join_as(&a, "g", true, 10000, 20000), -100);
    ck_assert_int_eq(find("g")->nmembers, 1);
    advance(DELAY);
    ck_assert_int_eq(poll(&a, "g"), KERR_NONE);
    /* An id handed out but never used expires after the session timeout. */
    client_t b;
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(join_as(&b, "g", true, 10000, 20000), KERR_MEMBER_ID_REQUIRED);
    ck_assert_int_eq(find("g")->npending, 1);
    advance(10000);
    ck_assert_int_eq(find("g")->npending, 0);
    drop(&a);
    drop(&b);
}
END_TEST

START_TEST(rebalance_waits_for_every_member_and_assignments_pass_unchanged) {
    client_t c[2];
    memset(c, 0, sizeof c);
    form("g", c, 1);
    /* B joins: A learns of the rebalance through its heartbeat. */
    ck_assert_int_eq(join(&c[1], "g"), -100);
    ck_assert_int_eq(find("g")->state, GS_PREPARING_REBALANCE);
    ck_assert_int_eq(heartbeat(&c[0], "g"), KERR_REBALANCE_IN_PROGRESS);
    advance(5000);
    ck_assert_int_eq(poll(&c[1], "g"), -100); /* still waiting for A */
    /* A rejoins: everyone is in, A's answer comes at once, B's is filed. */
    ck_assert_int_eq(join(&c[0], "g"), KERR_NONE);
    ck_assert_int_eq(poll(&c[1], "g"), KERR_NONE);
    ck_assert_int_eq(c[0].generation, 2);
    ck_assert_int_eq(c[1].generation, 2);
    client_t *leader = !strcmp(c[0].answer->leader, c[0].member_id) ? &c[0] : &c[1];
    client_t *follower = leader == &c[0] ? &c[1] : &c[0];
    ck_assert_int_eq(leader->answer->nmembers, 2);
    ck_assert_int_eq(follower->answer->nmembers, 0);
    /* The follower syncs first and waits for the leader. */
    ck_assert_int_eq(sync_as(follower, "g", 0, NULL, NULL), -100);
    client_t *to[2] = {leader, follower};
    const char *bytes[2] = {"leader-bytes", "follower-bytes"};
    ck_assert_int_eq(sync_as(leader, "g", 2, to, bytes), KERR_NONE);
    ck_assert(assignment_is(leader, "leader-bytes"));
    ck_assert_int_eq(poll(follower, "g"), KERR_NONE);
    ck_assert(assignment_is(follower, "follower-bytes"));
    /* A stale generation is refused. */
    follower->generation = 1;
    ck_assert_int_eq(heartbeat(follower, "g"), KERR_ILLEGAL_GENERATION);
    follower->generation = 2;
    ck_assert_int_eq(heartbeat(follower, "g"), KERR_NONE);
    strcpy(follower->member_id, "nobody");
    ck_assert_int_eq(heartbeat(follower, "g"), KERR_UNKNOWN_MEMBER_ID);
    drop(&c[0]);
    drop(&c[1]);
}
END_TEST

START_TEST(rebalance_timeout_removes_members_that_did_not_rejoin) {
    client_t c[3];
    memset(c, 0, sizeof c);
    form("g", c, 2);
    /* C joins; A rejoins, B stays silent (but heartbeats, so its session lives). */
    ck_assert_int_eq(join(&c[2], "g"), -100);
    ck_assert_int_eq(join(&c[0], "g"), -100);
    advance(5000);
    ck_assert_int_eq(heartbeat(&c[1], "g"), KERR_REBALANCE_IN_PROGRESS);
    advance(5000);
    ck_assert_int_eq(heartbeat(&c[1], "g"), KERR_REBALANCE_IN_PROGRESS);
    advance(10000); /* the rebalance timeout (20 s) */
    ck_assert_int_eq(poll(&c[0], "g"), KERR_NONE);
    ck_assert_int_eq(poll(&c[2], "g"), KERR_NONE);
    ck_assert_int_eq(find("g")->nmembers, 2);
    ck_assert_int_eq(heartbeat(&c[1], "g"), KERR_UNKNOWN_MEMBER_ID);
    for (int i = 0; i < 3; i++) drop(&c[i]);
}
END_TEST

START_TEST(session_timeout_expires_silent_member) {
    client_t c[2];
    memset(c, 0, sizeof c);
    form("g", c, 2);
    for (int i = 0; i < 2; i++) {
        advance(4000);
        ck_assert_int_eq(heartbeat(&c[0], "g"), KERR_NONE);
    }
    advance(4000);
    /* B never heartbeat: gone after its 10 s session; A is told to rejoin. */
    ck_assert_int_eq(find("g")->nmembers, 1);
    ck_assert_int_eq(heartbeat(&c[0], "g"), KERR_REBALANCE_IN_PROGRESS);
    ck_assert_int_eq(join(&c[0], "g"), KERR_NONE); /* the only member: completes at once */
    ck_assert_int_eq(c[0].generation, 2);
    drop(&c[0]);
    drop(&c[1]);
}
END_TEST

START_TEST(leave_group_by_member_and_by_instance) {
    client_t c[3];
    memset(c, 0, sizeof c);
    form("g", c, 2);
    gleave_t l = {kstr_c(c[1].member_id), KSTR_NULL, -1};
    ck_assert_int_eq(group_leave(KSTR_LIT("g"), &l, 1), KERR_NONE);
    ck_assert_int_eq(l.error, KERR_NONE);
    ck_assert_int_eq(find("g")->state, GS_PREPARING_REBALANCE);
    gleave_t again = {kstr_c(c[1].member_id), KSTR_NULL, -1};
    ck_assert_int_eq(group_leave(KSTR_LIT("g"), &again, 1), KERR_NONE);
    ck_assert_int_eq(again.error, KERR_UNKNOWN_MEMBER_ID);
    gleave_t none = {KSTR_LIT("x"), KSTR_NULL, -1};
    ck_assert_int_eq(group_leave(KSTR_LIT("nogroup"), &none, 1), KERR_NONE);
    ck_assert_int_eq(none.error, KERR_UNKNOWN_MEMBER_ID);
    ck_assert_int_eq(group_leave(KSTR_LIT(""), &none, 1), KERR_INVALID_GROUP_ID);
    /* A static member removed by an admin through its instance id. */
    c[2].instance = "inst-2";
    ck_assert_int_eq(join(&c[2], "g"), -100);
    ck_assert_int_eq(join(&c[0], "g"), KERR_NONE); /* the last to rejoin: at once */
    ck_assert_int_eq(poll(&c[2], "g"), KERR_NONE);
    gleave_t byinst = {KSTR_LIT(""), KSTR_LIT("inst-2"), -1};
    ck_assert_int_eq(group_leave(KSTR_LIT("g"), &byinst, 1), KERR_NONE);
    ck_assert_int_eq(byinst.error, KERR_NONE);
    ck_assert_int_eq(find("g")->nmembers, 1);
    for (int i = 0; i < 3; i++) drop(&c[i]);
}
END_TEST

START_TEST(static_member_rejoins_without_rebalance) {
    client_t c[2];
    memset(c, 0, sizeof c);
    c[0].instance = "inst-0";
    c[1].instance = "inst-1";
    form("g", c, 2);
    const group_t *g = find("g");
    int32_t gen = g->generation;
    char old_id[128];
    snprintf(old_id, sizeof old_id, "%s", c[1].member_id);
    bool was_leader = !strcmp(c[1].answer->leader ? c[1].answer->leader : "", old_id) ||
                      (g->leader && !strcmp(g->leader->id, old_id));
    /* inst-1 restarts: unknown member id, same instance id. */
    client_t again;
    memset(&again, 0, sizeof again);
    again.instance = "inst-1";
    ck_assert_int_eq(join_as(&again, "g", true, 10000, 20000), KERR_NONE);
    ck_assert_int_eq(find("g")->state, GS_STABLE);
    ck_assert_int_eq(find("g")->generation, gen);
    ck_assert_str_ne(again.member_id, old_id);
    ck_assert(!strncmp(again.member_id, "inst-1-", 7));
    /* Before v9 it is never told it leads (no trivial reassignment). */
    ck_assert_str_ne(again.answer->leader, again.member_id);
    (void)was_leader;
    /* It syncs and gets its previous assignment; the old id is fenced. */
    ck_assert_int_eq(sync_as(&again, "g", 0, NULL, NULL), KERR_NONE);
    ck_assert(assignment_is(&again, "A1"));
    ck_assert_int_eq(heartbeat(&c[1], "g"), KERR_FENCED_INSTANCE_ID);
    ck_assert_int_eq(heartbeat(&again, "g"), KERR_NONE);
    ck_assert_int_eq(heartbeat(&c[0], "g"), KERR_NONE);
    drop(&c[0]);
    drop(&c[1]);
    drop(&again);
}
END_TEST

START_TEST(member_that_never_syncs_is_removed) {
    client_t c[2];
    memset(c, 0, sizeof c);
    g_group_cfg.initial_rebalance_delay_ms = 0;
    ck_assert_int_eq(join(&c[0], "g"), -100);
    ck_assert_int_eq(join(&c[1], "g"), -100);
    advance(0);
    ck_assert_int_eq(poll(&c[0], "g"), KERR_NONE);
    ck_assert_int_eq(poll(&c[1], "g"), KERR_NONE);
    client_t *leader = !strcmp(c[0].answer->leader, c[0].member_id) ? &c[0] : &c[1];
    client_t *other = leader == &c[0] ? &c[1] : &c[0];
    client_t *to[2] = {leader, other};
    const char *bytes[2] = {"L", "F"};
    ck_assert_int_eq(sync_as(leader, "g", 2, to, bytes), KERR_NONE);
    /* The other member heartbeats (its session lives) but never syncs: it is
     * removed at the rebalance timeout (20 s) and the group rebalances. */
    for (int i = 0; i < 4; i++) {
        advance(5000);
        ck_assert_int_eq(heartbeat(other, "g"), i < 3 ? KERR_NONE : KERR_UNKNOWN_MEMBER_ID);
        ck_assert_int_eq(heartbeat(leader, "g"), i < 3 ? KERR_NONE : KERR_REBALANCE_IN_PROGRESS);
    }
    ck_assert_int_eq(find("g")->nmembers, 1);
    drop(&c[0]);
    drop(&c[1]);
}
END_TEST

START_TEST(protocol_selection_and_inconsistent_protocols) {
    client_t a, b, x;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&x, 0, sizeof x);
    a.nprotocols = b.nprotocols = 2;
    a.protocols[0] = "cooperative-sticky";
    a.protocols[1] = "range";
    b.protocols[0] = "range";
    b.protocols[1] = "cooperative-sticky";
    a.metadata[0] = a.metadata[1] = "ma";
    b.metadata[0] = b.metadata[1] = "mb";
    g_group_cfg.initial_rebalance_delay_ms = 0;
    ck_assert_int_eq(join(&a, "g"), -100);
    ck_assert_int_eq(join(&b, "g"), -100);
    x.nprotocols = 1;
    x.protocols[0] = "roundrobin";
    x.metadata[0] = "mx";
    ck_assert_int_eq(join(&x, "g"), KERR_INCONSISTENT_GROUP_PROTOCOL);
    advance(0);
    ck_assert_int_eq(poll(&a, "g"), KERR_NONE);
    ck_assert_int_eq(poll(&b, "g"), KERR_NONE);
    /* One vote each: the first voted for wins; both get the same. */
    ck_assert_str_eq(a.answer->protocol_name, b.answer->protocol_name);
    client_t bad;
    memset(&bad, 0, sizeof bad);
    ck_assert_int_eq(join_as(&bad, "g2", false, 5999, 20000), KERR_INVALID_SESSION_TIMEOUT);
    ck_assert_int_eq(join(&bad, ""), KERR_INVALID_GROUP_ID);
    strcpy(bad.member_id, "ghost");
    ck_assert_int_eq(join(&bad, "nogroup"), KERR_UNKNOWN_MEMBER_ID);
    drop(&a);
    drop(&b);
    drop(&x);
    drop(&bad);
}
END_TEST

/* ---- offsets ---- */

static gcommit_t commit_of(const char *topic, int32_t p, int64_t off) {
    return (gcommit_t){kstr_c(topic), p, off, -1, KSTR_LIT("md"), -1, -1, -1};
}

static int64_t fetched(const char *group, const char *topic, int32_t p) {
    gfetched_t f = {kstr_c(topic), p, 0, 0, KSTR_NULL, 0};
    ck_assert_int_eq(group_fetch_offsets(kstr_c(group), &f, 1), KERR_NONE);
    ck_assert_int_eq(f.error, KERR_NONE);
    return f.offset;
}

START_TEST(commit_checks_and_assign_mode_commits) {
    /* assign() mode: no member, generation -1: the group is created. */
    gcommit_t c[3] = {commit_of("t1", 0, 42), commit_of("t1", 7, 1), commit_of("nope", 0, 1)};
    group_commit(KSTR_LIT("solo"), KSTR_LIT(""), KSTR_NULL, -1, c, 3);
    ck_assert_int_eq(c[0].error, KERR_NONE);
    ck_assert_int_eq(c[1].error, KERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert_int_eq(c[2].error, KERR_UNKNOWN_TOPIC_OR_PARTITION);
    ck_assert_int_eq(fetched("solo", "t1", 0), 42);
    ck_assert_int_eq(fetched("solo", "t1", 1), -1);
    ck_assert_int_eq(fetched("unknown-group", "t1", 0), -1);
    /* A generation for a group that does not exist. */
    gcommit_t d = commit_of("t1", 0, 1);
    group_commit(KSTR_LIT("none"), KSTR_LIT("m"), KSTR_NULL, 3, &d, 1);
    ck_assert_int_eq(d.error, KERR_ILLEGAL_GENERATION);
    /* A live group: only its members, in their generation. */
    client_t cs[1];
    memset(cs, 0, sizeof cs);
    form("g", cs, 1);
    gcommit_t e = commit_of("t1", 1, 5);
    group_commit(KSTR_LIT("g"), KSTR_LIT(""), KSTR_NULL, -1, &e, 1);
    ck_assert_int_eq(e.error, KERR_UNKNOWN_MEMBER_ID);
    e = commit_of("t1", 1, 5);
    group_commit(KSTR_LIT("g"), kstr_c(cs[0].member_id), KSTR_NULL, cs[0].generation + 1, &e, 1);
    ck_assert_int_eq(e.error, KERR_ILLEGAL_GENERATION);
    e = commit_of("t1", 1, 5);
    group_commit(KSTR_LIT("g"), kstr_c(cs[0].member_id), KSTR_NULL, cs[0].generation, &e, 1);
    ck_assert_int_eq(e.error, KERR_NONE);
    ck_assert_int_eq(fetched("g", "t1", 1), 5);
    /* Metadata over the limit. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    e = commit_of("t1", 2, 9);
    e.metadata = kstr_c(big);
    group_commit(KSTR_LIT("g"), kstr_c(cs[0].member_id), KSTR_NULL, cs[0].generation, &e, 1);
    ck_assert_int_eq(e.error, KERR_OFFSET_METADATA_TOO_LARGE);
    /* Every offset of the group, sorted. */
    gfetched_t *all;
    int n;
    ck_assert_int_eq(group_fetch_all_offsets(KSTR_LIT("solo"), &all, &n), KERR_NONE);
    ck_assert_int_eq(n, 1);
    ck_assert(kstr_eq_c(all[0].topic, "t1"));
    ck_assert(kstr_eq_c(all[0].metadata, "md"));
    free(all);
    drop(&cs[0]);
}
END_TEST

START_TEST(offsets_of_deleted_topics_are_gone) {
    gcommit_t c = commit_of("t2", 0, 10);
    group_commit(KSTR_LIT("solo"), KSTR_LIT(""), KSTR_NULL, -1, &c, 1);
    ck_assert_int_eq(fetched("solo", "t2", 0), 10);
    ck_assert_int_eq(topic_delete(KSTR_LIT("t2")), KERR_NONE);
    const char *msg;
    ck_assert_int_eq(topic_create(KSTR_LIT("t2"), 1, NULL, NULL, 0, false, NULL, &msg), KERR_NONE);
    ck_assert_int_eq(fetched("solo", "t2", 0), -1); /* the new t2 is another topic */
    ck_assert_int_eq(group_expire_offsets(fake_now), 1);
}
END_TEST

START_TEST(retention_of_empty_and_standalone_groups) {
    int64_t ret = g_group_cfg.offsets_retention_ms;
    gcommit_t c = commit_of("t1", 0, 1);
    group_commit(KSTR_LIT("solo"), KSTR_LIT(""), KSTR_NULL, -1, &c, 1);
    /* A consumer group that commits, then empties. */
    client_t cs[1];
    memset(cs, 0, sizeof cs);
    form("g", cs, 1);
    gcommit_t d = commit_of("t1", 1, 7);
    group_commit(KSTR_LIT("g"), kstr_c(cs[0].member_id), KSTR_NULL, cs[0].generation, &d, 1);
    ck_assert_int_eq(d.error, KERR_NONE);
    /* While the group lives and subscribes nothing parseable, nothing expires. */
    fake_now += ret;
    ck_assert_int_eq(heartbeat(&cs[0], "g"), KERR_NONE);
    ck_assert_int_eq(group_expire_offsets(fake_now), 1); /* solo's, by commit time */
    ck_assert_int_eq(fetched("solo", "t1", 0), -1);
    ck_assert_ptr_null(find("solo"));
    ck_assert_int_eq(fetched("g", "t1", 1), 7);
    gleave_t l = {kstr_c(cs[0].member_id), KSTR_NULL, -1};
    ck_assert_int_eq(group_leave(KSTR_LIT("g"), &l, 1), KERR_NONE);
    ck_assert_int_eq(find("g")->state, GS_EMPTY);
    /* Retention counts from when the group became empty. */
    fake_now += ret - 1;
    ck_assert_int_eq(group_expire_offsets(fake_now), 0);
    fake_now += 1;
    ck_assert_int_eq(group_expire_offsets(fake_now), 1);
    ck_assert_ptr_null(find("g"));
    drop(&cs[0]);
}
END_TEST

START_TEST(delete_groups_and_offset_delete) {
    client_t cs[1];
    memset(cs, 0, sizeof cs);
    form("g", cs, 1);
    ck_assert_int_eq(group_delete(KSTR_LIT("g")), KERR_NON_EMPTY_GROUP);
    ck_assert_int_eq(group_delete(KSTR_LIT("nope")), KERR_GROUP_ID_NOT_FOUND);
    gcommit_t c[2] = {commit_of("t1", 0, 3), commit_of("t2", 0, 4)};
    group_commit(KSTR_LIT("g"), kstr_c(cs[0].member_id), KSTR_NULL, cs[0].generation, c, 2);
    /* The member's metadata is not a consumer subscription: unknown
     * subscription, so every topic counts as subscribed. */
    gdelete_offset_t d[2] = {{KSTR_LIT("t1"), 0, -1}, {KSTR_LIT("zz"), 0, -1}};
    ck_assert_int_eq(group_delete_offsets(KSTR_LIT("g"), d, 2), KERR_NONE);
    ck_assert_int_eq(d[0].error, KERR_GROUP_SUBSCRIBED_TO_TOPIC);
    ck_assert_int_eq(d[1].error, KERR_UNKNOWN_TOPIC_OR_PARTITION);
    gleave_t l = {kstr_c(cs[0].member_id), KSTR_NULL, -1};
    group_leave(KSTR_LIT("g"), &l, 1);
    gdelete_offset_t e = {KSTR_LIT("t1"), 0, -1};
    ck_assert_int_eq(group_delete_offsets(KSTR_LIT("g"), &e, 1), KERR_NONE);
    ck_assert_int_eq(e.error, KERR_NONE);
    ck_assert_int_eq(fetched("g", "t1", 0), -1);
    ck_assert_int_eq(fetched("g", "t2", 0), 4);
    ck_assert_int_eq(group_delete(KSTR_LIT("g")), KERR_NONE);
    ck_assert_ptr_null(find("g"));
    ck_assert_int_eq(fetched("g", "t2", 0), -1);
    ck_assert_int_eq(group_delete_offsets(KSTR_LIT("g"), &e, 1), KERR_GROUP_ID_NOT_FOUND);
    drop(&cs[0]);
}
END_TEST

START_TEST(subscribed_topics_from_consumer_metadata) {
    /* ConsumerProtocolSubscription v0: version 0, topics ["t1"], no user data. */
    static const char sub[] = "\x00\x00" "\x00\x00\x00\x01" "\x00\x02" "t1" "\xff\xff\xff\xff";
    client_t a;
    memset(&a, 0, sizeof a);
    kstr_t names[1] = {KSTR_LIT("range")};
    kbytes_t metas[1] = {{(const uint8_t *)sub, (int32_t)sizeof sub - 1}};
    gjoin_args_t args = {.group_id = KSTR_LIT("g"), .member_id = KSTR_LIT(""), .instance_id = KSTR_NULL,
                         .client_id = KSTR_LIT("cli"), .client_host = "/h", .session_timeout_ms = 10000,
                         .rebalance_timeout_ms = 10000, .protocol_type = KSTR_LIT("consumer"), .nprotocols = 1,
                         .protocol_names = names, .protocol_metadata = metas};
    g_group_cfg.initial_rebalance_delay_ms = 0;
    ck_assert_ptr_null(group_join(&args, &a.ticket));
    advance(0);
    ck_assert_int_eq(poll(&a, "g"), KERR_NONE);
    ck_assert_int_eq(sync_as(&a, "g", 0, NULL, NULL), KERR_NONE);
    const group_t *g = find("g");
    ck_assert(g->subscribed_known);
    ck_assert_int_eq(g->nsubscribed, 1);
    gcommit_t c[2] = {commit_of("t1", 0, 3), commit_of("t2", 0, 4)};
    group_commit(KSTR_LIT("g"), kstr_c(a.member_id), KSTR_NULL, a.generation, c, 2);
    gdelete_offset_t d[2] = {{KSTR_LIT("t1"), 0, -1}, {KSTR_LIT("t2"), 0, -1}};
    ck_assert_int_eq(group_delete_offsets(KSTR_LIT("g"), d, 2), KERR_NONE);
    ck_assert_int_eq(d[0].error, KERR_GROUP_SUBSCRIBED_TO_TOPIC);
    ck_assert_int_eq(d[1].error, KERR_NONE);
    /* A stable consumer group: offsets of unsubscribed topics expire. */
    gcommit_t e = commit_of("t2", 0, 5);
    group_commit(KSTR_LIT("g"), kstr_c(a.member_id), KSTR_NULL, a.generation, &e, 1);
    fake_now += g_group_cfg.offsets_retention_ms;
    ck_assert_int_eq(heartbeat(&a, "g"), KERR_NONE);
    ck_assert_int_eq(group_expire_offsets(fake_now), 1);
    ck_assert_int_eq(fetched("g", "t1", 0), 3);
    ck_assert_int_eq(fetched("g", "t2", 0), -1);
    drop(&a);
}
END_TEST

/* ---- persistence ---- */

static char tmpdir[256];

static void persist_setup(void) {
    setup();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kafscale-test-group-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(g_broker.cfg.data_dir, sizeof g_broker.cfg.data_dir, "%s", tmpdir);
}

static void persist_teardown(void) {
    group_shutdown();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
    teardown();
}

START_TEST(groups_and_offsets_survive_a_restart) {
    ck_assert_int_eq(group_init(), 0);
    /* A stable group with a committed offset, an assign()-mode group with
     * binary metadata, and an emptied group. */
    client_t cs[2];
    memset(cs, 0, sizeof cs);
    cs[1].instance = "inst";
    g_group_cfg.initial_rebalance_delay_ms = 0;
    form("g", cs, 2);
    gcommit_t c = commit_of("t1", 2, 77);
    group_commit(KSTR_LIT("g"), kstr_c(cs[0].member_id), KSTR_NULL, cs[0].generation, &c, 1);
    ck_assert_int_eq(c.error, KERR_NONE);
    gcommit_t s = commit_of("t1", 0, 5);
    s.metadata = (kstr_t){"\xff\x00\xfe", 3};
    group_commit(KSTR_LIT("solo"), KSTR_LIT(""), KSTR_NULL, -1, &s, 1);
    client_t e[1];
    memset(e, 0, sizeof e);
    form("gone", e, 1);
    gleave_t l = {kstr_c(e[0].member_id), KSTR_NULL, -1};
    group_leave(KSTR_LIT("gone"), &l, 1);
    int32_t gen = find("g")->generation;
    group_shutdown();

    ck_assert_int_eq(group_init(), 0);
    const group_t *g = find("g");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->state, GS_STABLE);
    ck_assert_int_eq(g->generation, gen);
    ck_assert_int_eq(g->nmembers, 2);
    ck_assert_str_eq(g->protocol, "range");
    ck_assert_int_eq(fetched("g", "t1", 2), 77);
    gfetched_t f = {KSTR_LIT("t1"), 0, 0, 0, KSTR_NULL, 0};
    group_fetch_offsets(KSTR_LIT("solo"), &f, 1);
    ck_assert_int_eq(f.offset, 5);
    ck_assert_int_eq(f.metadata.len, 3);
    ck_assert(!memcmp(f.metadata.p, "\xff\x00\xfe", 3));
    ck_assert_int_eq(find("gone")->state, GS_EMPTY);
    /* The restored members keep their assignments and heartbeat on. */
    ck_assert_int_eq(heartbeat(&cs[0], "g"), KERR_NONE);
    ck_assert_int_eq(sync_as(&cs[1], "g", 0, NULL, NULL), KERR_NONE);
    ck_assert(assignment_is(&cs[1], "A1"));
    /* Members that stop heartbeating expire after their session. */
    fake_now += 11000;
    group_tick(fake_now);
    ck_assert_int_eq(find("g")->nmembers, 0);
    ck_assert_int_eq(find("g")->state, GS_EMPTY);
    drop(&cs[0]);
    drop(&cs[1]);
    drop(&e[0]);
}
END_TEST

static int loaded_groups, loaded_offsets;
static int64_t loaded_offset_value;
static void count_group(void *arg, const mg_group_t *g) { loaded_groups++; }
static void count_offset(void *arg, const char *group, const mg_offset_t *o) {
    loaded_offsets++;
    loaded_offset_value = o->offset;
}

START_TEST(journal_compaction_and_torn_tail) {
    char err[256];
    meta_groups_t *m = meta_groups_open(tmpdir, err, sizeof err);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(meta_groups_open(tmpdir, err, sizeof err)); /* one writer */
    meta_groups_set_compact_bytes(m, 4096);
    mg_member_t mm = {"m-1", NULL, "c", "/h", 6000, 6000, (const uint8_t *)"\x00\x01", 2, (const uint8_t *)"\x02", 1};
    mg_group_t g = {"g\xc3", "consumer", "range", "m-1", 1, 123, 1, &mm}; /* not UTF-8: stored as hex */
    ck_assert_int_eq(meta_groups_put_group(m, &g), 0);
    for (int i = 0; i < 300; i++) {
        mg_offset_t o = {.topic = "t1", .partition = i % 3, .offset = i, .leader_epoch = -1, .metadata = "md",
                         .metadata_len = 2, .commit_ms = 1, .expire_ms = -1};
        ck_assert_int_eq(meta_groups_put_offsets(m, "g\xc3", &o, 1), 0);
    }
    ck_assert_uint_lt(meta_groups_journal_bytes(m), 2 * 4096 + 1024); /* compacted on the way (~50 KB written) */
    mg_load_cb_t cb = {count_group, count_offset, NULL};
    loaded_groups = loaded_offsets = 0;
    ck_assert_int_eq(meta_groups_load(m, &cb, err, sizeof err), 0);
    ck_assert_int_eq(loaded_groups, 1);
    ck_assert_int_eq(loaded_offsets, 3);
    meta_groups_close(m);
    /* A torn last line (a crash mid-write) is ignored. */
    char p[400];
    snprintf(p, sizeof p, "%s/meta/groups.journal", tmpdir);
    FILE *f = fopen(p, "a");
    ck_assert_ptr_nonnull(f);
    fputs("0badc0de {\"t\":\"delgroup\",\"g\":\"g\\u00c3", f);
    fclose(f);
    m = meta_groups_open(tmpdir, err, sizeof err);
    ck_assert_ptr_nonnull(m);
    loaded_groups = loaded_offsets = 0;
    ck_assert_int_eq(meta_groups_load(m, &cb, err, sizeof err), 0);
    ck_assert_int_eq(loaded_groups, 1);
    ck_assert_int_eq(loaded_offsets, 3);
    ck_assert_int_eq(meta_groups_delete_group(m, "g\xc3"), 0);
    loaded_groups = loaded_offsets = 0;
    ck_assert_int_eq(meta_groups_load(m, &cb, err, sizeof err), 0);
    ck_assert_int_eq(loaded_groups + loaded_offsets, 0);
    meta_groups_close(m);
}
END_TEST

Suite *group_suite(void) {
    Suite *s = suite_create("group");
    TCase *tc = tcase_create("coordinator");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, join_waits_initial_delay_then_leader_gets_members);
    tcase_add_test(tc, member_id_required_from_v4);
    tcase_add_test(tc, rebalance_waits_for_every_member_and_assignments_pass_unchanged);
    tcase_add_test(tc, rebalance_timeout_removes_members_that_did_not_rejoin);
    tcase_add_test(tc, session_timeout_expires_silent_member);
    tcase_add_test(tc, leave_group_by_member_and_by_instance);
    tcase_add_test(tc, static_member_rejoins_without_rebalance);
    tcase_add_test(tc, member_that_never_syncs_is_removed);
    tcase_add_test(tc, protocol_selection_and_inconsistent_protocols);
    suite_add_tcase(s, tc);
    TCase *to = tcase_create("offsets");
    tcase_add_checked_fixture(to, setup, teardown);
    tcase_add_test(to, commit_checks_and_assign_mode_commits);
    tcase_add_test(to, offsets_of_deleted_topics_are_gone);
    tcase_add_test(to, retention_of_empty_and_standalone_groups);
    tcase_add_test(to, delete_groups_and_offset_delete);
    tcase_add_test(to, subscribed_topics_from_consumer_metadata);
    suite_add_tcase(s, to);
    TCase *tp = tcase_create("persistence");
    tcase_add_checked_fixture(tp, persist_setup, persist_teardown);
    tcase_add_test(tp, groups_and_offsets_survive_a_restart);
    tcase_add_test(tp, journal_compaction_and_torn_tail);
    suite_add_tcase(s, tp);
    return s;
}
