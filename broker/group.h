/* group.h - the group coordinator: consumer groups (membership, rebalances,
 * generations) and their committed offsets, as Kafka's classic group
 * coordinator behaves (kafka.coordinator.group.GroupCoordinator).
 *
 * A group moves through the states below. A rebalance (PreparingRebalance)
 * waits until every known member rejoined or the rebalance timeout (the
 * largest of the members') passed; the JoinGroup requests wait parked
 * meanwhile. Then a new generation starts (CompletingRebalance): every
 * member gets its JoinGroup answer, the leader with all members' protocol
 * metadata; the leader's SyncGroup carries the assignments, which the
 * coordinator hands out unchanged (so every client-side assignor works,
 * cooperative-sticky included), and the group is Stable. Members that stop
 * heartbeating for their session timeout are removed, which starts a
 * rebalance; static members (group.instance.id) rejoining with a new member
 * id take their old place without one.
 *
 *   Empty ----join----> PreparingRebalance --all joined / timeout--> CompletingRebalance
 *     ^                   ^        |                                   |
 *     |  (nobody joined)  |        +-------------> Empty               | leader's SyncGroup
 *     |                   +-- join, leave, expiry --+-----------------Stable
 *   Dead: deleted (DeleteGroups, or empty with no offsets left)
 *
 * Waiting requests. The coordinator never holds a request: a JoinGroup or
 * SyncGroup that must wait gets a ticket (group_join/group_sync return
 * NULL), the handler parks (kreq_park) and polls with that ticket when
 * woken (kreq_wake_parked, called whenever answers are ready). Answers live
 * in a table keyed by ticket until polled, so a request whose connection
 * died leaves nothing dangling (unclaimed answers are dropped after a
 * minute).
 *
 * Persistence (common/meta_groups.h): a group's metadata is written when a
 * generation's assignment is set, when the group becomes empty and when a
 * static member is replaced; offsets on every commit, deletion and expiry -
 * never on a heartbeat. At start the stored groups come back Stable (with
 * their members, who must heartbeat within their session timeout) or Empty.
 *
 * Timers: one per group (on g_broker.base) for the earliest of its member
 * session deadlines, pending-member deadlines, the join deadline and the
 * pending-sync deadline; one for offset retention
 * (KAFSCALE_OFFSETS_RETENTION_CHECK_INTERVAL_MS).
 *
 * Memory: groups, members and answers are malloc'ed and owned here; the
 * structs below are exposed read-only for the API handlers (DescribeGroups,
 * ListGroups) and are valid until the next call into the coordinator.
 */
#ifndef KAFSCALE_GROUP_H
#define KAFSCALE_GROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "kbuf.h"

typedef enum gstate {
    GS_EMPTY = 0,
    GS_PREPARING_REBALANCE,
    GS_COMPLETING_REBALANCE,
    GS_STABLE,
    GS_DEAD,
    GS__MAX
} gstate_t;

/* Kafka's names ("Empty", "PreparingRebalance", ...). */
const char *group_state_name(gstate_t s);

typedef struct gprotocol {
    char *name;
    uint8_t *metadata;
    int32_t len;
} gprotocol_t;

#define GMEMBER_MAGIC 0x676d656du /* "gmem" */

typedef struct gmember {
    uint32_t magic;
    char *id;
    char *instance_id;         /* group.instance.id; NULL for a dynamic member */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    gprotocol_t *protocols;    /* in the member's order of preference */
    int nprotocols;
    uint8_t *assignment;       /* from the leader's SyncGroup, unchanged */
    int32_t assignment_len;
    bool is_new;               /* joined in the running rebalance (5-minute join deadline) */
    bool pending_sync;         /* got its JoinGroup answer, has not sent SyncGroup yet */
    int64_t hb_deadline_ms;    /* removed when silent past this (unless awaiting) */
    uint64_t join_ticket;      /* a JoinGroup waits for the rebalance: "awaiting join" */
    uint64_t sync_ticket;      /* a SyncGroup waits for the leader: "awaiting sync" */
    TAILQ_ENTRY(gmember) link;
} gmember_t;

TAILQ_HEAD(gmember_list, gmember);

typedef struct gpending {
    char *id;
    int64_t deadline_ms;
} gpending_t;

/* A committed offset. */
typedef struct goffset {
    char *topic;
    uint8_t topic_id[16];
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;            /* NULL: null */
    int32_t metadata_len;
    int64_t commit_ms;
    int64_t expire_ms;         /* -1: the broker's retention */
    struct goffset *next;      /* hash chain */
} goffset_t;

#define GROUP_MAGIC 0x67727570u /* "grup" */

typedef struct group {
    uint32_t magic;
    char *id;
    gstate_t state;
    int64_t state_ms;          /* when the current state began */
    int32_t generation;
    char *protocol_type;       /* NULL: none yet (offsets-only groups) */
    char *protocol;            /* the selected protocol; NULL when Empty */
    gmember_t *leader;
    struct gmember_list members; /* in join order */
    int nmembers;
    gpending_t *pending;       /* member ids handed out with MEMBER_ID_REQUIRED */
    int npending, pending_cap;
    bool new_member_added;     /* a member joined during the initial delayed join */
    bool initial_delay;        /* the join phase is the initial delayed one */
    int64_t join_deadline_ms;
    int64_t initial_remaining_ms;
    int64_t sync_deadline_ms;  /* members that have not synced by then are removed */
    char **subscribed;         /* topics the members subscribe to (consumer protocol) */
    int nsubscribed;
    bool subscribed_known;
    goffset_t **obuckets;      /* committed offsets, hashed by (topic, partition) */
    uint32_t nobuckets, noffsets;
    struct event *timer;
    struct group *hash_next;
    TAILQ_ENTRY(group) link;
} group_t;

/* ---- life cycle ---- */

/* Reads the settings (KAFSCALE_GROUP_*, KAFSCALE_OFFSETS_*), opens the
 * groups journal under the data dir and restores groups and offsets. 0 or -1. */
int group_init(void);
void group_shutdown(void);
/* Cluster: the live brokers changed; groups coordinated elsewhere now are forgotten. */
void group_coordinators_changed(void);
/* Cluster: our lease was lost; every group is read from etcd again when next used. */
void group_forget_all(void);
/* Tests: start without a journal (nothing is persisted) and with a clock. */
void group_init_memory(int64_t (*clock)(void));

/* ---- JoinGroup / SyncGroup ---- */

typedef struct gjoin_member {
    char *member_id;
    char *instance_id;
    uint8_t *metadata;
    int32_t len;
} gjoin_member_t;

/* An answer to a JoinGroup or SyncGroup (malloc'ed; group_answer_free()). */
typedef struct ganswer {
    uint64_t ticket;
    int64_t created_ms;
    int16_t error;
    int32_t generation;
    char *protocol_type;       /* NULL: none */
    char *protocol_name;       /* NULL: none */
    char *leader;              /* JoinGroup: "" when none */
    char *member_id;           /* JoinGroup */
    bool skip_assignment;      /* JoinGroup v9 */
    gjoin_member_t *members;   /* JoinGroup: the leader gets every member's metadata */
    int nmembers;
    uint8_t *assignment;       /* SyncGroup */
    int32_t assignment_len;
    struct ganswer *hash_next;
    TAILQ_ENTRY(ganswer) link;
} ganswer_t;

void group_answer_free(ganswer_t *a);

typedef struct gjoin_args {
    kstr_t group_id;
    kstr_t member_id;            /* "" for a new member */
    kstr_t instance_id;          /* len < 0: none */
    kstr_t client_id;
    const char *client_host;
    int32_t session_timeout_ms;
    int32_t rebalance_timeout_ms;
    kstr_t protocol_type;
    int nprotocols;
    const kstr_t *protocol_names;
    const kbytes_t *protocol_metadata;
    bool require_known_member_id; /* JoinGroup v4+ without a group.instance.id */
    bool supports_skip_assignment; /* JoinGroup v9+ */
} gjoin_args_t;

/* Handles a JoinGroup: returns the answer, or NULL with *ticket set when
 * the request must wait (park; then group_join_poll()). */
ganswer_t *group_join(const gjoin_args_t *a, uint64_t *ticket);
/* The answer for a waiting JoinGroup/SyncGroup ticket, or NULL while it
 * still waits. An unknown ticket answers UNKNOWN_MEMBER_ID. */
ganswer_t *group_poll(kstr_t group_id, uint64_t ticket);

typedef struct gassignment {
    kstr_t member_id;
    kbytes_t assignment;
} gassignment_t;

typedef struct gsync_args {
    kstr_t group_id;
    int32_t generation;
    kstr_t member_id;
    kstr_t instance_id;   /* len < 0: none */
    kstr_t protocol_type; /* len < 0: not given (v0-4) */
    kstr_t protocol_name; /* len < 0: not given (v0-4) */
    int nassignments;
    const gassignment_t *assignments;
} gsync_args_t;

ganswer_t *group_sync(const gsync_args_t *a, uint64_t *ticket);

/* ---- Heartbeat / LeaveGroup ---- */

int16_t group_heartbeat(kstr_t group_id, kstr_t member_id, kstr_t instance_id, int32_t generation);

typedef struct gleave {
    kstr_t member_id;
    kstr_t instance_id;   /* len < 0: none */
    int16_t error;        /* out */
} gleave_t;

/* Returns the top-level error; per-member errors in leaving[i].error. */
int16_t group_leave(kstr_t group_id, gleave_t *leaving, int n);

/* ---- offsets ---- */

typedef struct gcommit {
    kstr_t topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    kstr_t metadata;      /* len < 0: null */
    int64_t commit_ms;    /* -1: now */
    int64_t expire_ms;    /* -1: the broker's retention */
    int16_t error;        /* out */
} gcommit_t;

/* Commits offsets (OffsetCommit): validates topics and partitions, the
 * group, member and generation, then writes one journal record. */
void group_commit(kstr_t group_id, kstr_t member_id, kstr_t instance_id, int32_t generation, gcommit_t *c, int n);

typedef struct gfetched {
    kstr_t topic;          /* in: asked for; out for "all": the group's (valid until the next call) */
    int32_t partition;
    int64_t offset;        /* -1: no committed offset */
    int32_t leader_epoch;
    kstr_t metadata;       /* "" when none */
    int16_t error;
} gfetched_t;

/* OffsetFetch of the given partitions; returns the group-level error. */
int16_t group_fetch_offsets(kstr_t group_id, gfetched_t *f, int n);
/* Every committed offset of the group, sorted by topic and partition, in an
 * array malloc'ed here (the caller frees it). */
int16_t group_fetch_all_offsets(kstr_t group_id, gfetched_t **out, int *n);

typedef struct gdelete_offset {
    kstr_t topic;
    int32_t partition;
    int16_t error;         /* out */
} gdelete_offset_t;

/* OffsetDelete: returns the group-level error (then no partition errors). */
int16_t group_delete_offsets(kstr_t group_id, gdelete_offset_t *d, int n);

/* ---- describing, listing, deleting ---- */

/* Finds a group for DescribeGroups: *out NULL when there is none (Kafka
 * describes it as Dead). Returns INVALID_GROUP_ID or NONE. */
int16_t group_describe(kstr_t group_id, const group_t **out);
/* A member's metadata for the group's protocol (NULL/0 if none). */
const gprotocol_t *gmember_protocol(const gmember_t *m, const char *protocol);
const group_t *groups_first(void);
const group_t *groups_next(const group_t *g);
int16_t group_delete(kstr_t group_id);

/* ---- time ---- */

/* Runs every deadline due at `now` (the timers call this; tests too). */
void group_tick(int64_t now);
/* Expires offsets past retention and drops empty groups without offsets;
 * returns how many offsets were removed. */
int group_expire_offsets(int64_t now);

/* Settings (exposed for tests). */
typedef struct group_config {
    int32_t min_session_timeout_ms;
    int32_t max_session_timeout_ms;
    int32_t initial_rebalance_delay_ms;
    int32_t max_size;
    int64_t offsets_retention_ms;
    int64_t retention_check_interval_ms;
    int32_t offset_metadata_max_bytes;
} group_config_t;
extern group_config_t g_group_cfg;

#endif
