/* dispatch.c - the API table: every API the broker serves, its versions and handler.
 * ApiVersions answers from this table, and conn.c refuses any key or version
 * outside it before a handler runs. */
#include "broker.h"
#include "msg_api_versions.h"
#include "msg_produce.h"
#include "msg_fetch.h"
#include "msg_list_offsets.h"
#include "msg_metadata.h"
#include "msg_create_topics.h"
#include "msg_delete_topics.h"
#include "msg_find_coordinator.h"
#include "msg_join_group.h"
#include "msg_sync_group.h"
#include "msg_heartbeat.h"
#include "msg_leave_group.h"
#include "msg_offset_commit.h"
#include "msg_offset_fetch.h"
#include "msg_describe_groups.h"
#include "msg_list_groups.h"
#include "msg_delete_groups.h"
#include "msg_offset_delete.h"
#include "msg_delete_records.h"
#include "msg_offset_for_leader_epoch.h"
#include "msg_describe_configs.h"
#include "msg_alter_configs.h"
#include "msg_create_partitions.h"
#include "msg_incremental_alter_configs.h"
#include "msg_describe_cluster.h"

const api_def_t api_table[] = {
    {KAPI_PRODUCE, 0, 9, 9, "Produce", api_produce, &produce_req_schema, &produce_resp_schema},
    {KAPI_FETCH, 0, 13, 12, "Fetch", api_fetch, &fetch_req_schema, &fetch_resp_schema},
    {KAPI_LIST_OFFSETS, 0, 7, 6, "ListOffsets", api_list_offsets, &list_offsets_req_schema, &list_offsets_resp_schema},
    {KAPI_METADATA, 0, 12, 9, "Metadata", api_metadata, &metadata_req_schema, &metadata_resp_schema},
    {KAPI_API_VERSIONS, 0, 3, 3, "ApiVersions", api_api_versions, &api_versions_req_schema, &api_versions_resp_schema},
    {KAPI_CREATE_TOPICS, 0, 7, 5, "CreateTopics", api_create_topics, &create_topics_req_schema, &create_topics_resp_schema},
    {KAPI_DELETE_TOPICS, 0, 6, 4, "DeleteTopics", api_delete_topics, &delete_topics_req_schema, &delete_topics_resp_schema},
    {KAPI_OFFSET_COMMIT, 0, 8, 8, "OffsetCommit", api_offset_commit,
     &offset_commit_req_schema, &offset_commit_resp_schema},
    {KAPI_OFFSET_FETCH, 0, 8, 6, "OffsetFetch", api_offset_fetch, &offset_fetch_req_schema, &offset_fetch_resp_schema},
    {KAPI_FIND_COORDINATOR, 0, 4, 3, "FindCoordinator", api_find_coordinator,
     &find_coordinator_req_schema, &find_coordinator_resp_schema},
    {KAPI_JOIN_GROUP, 0, 9, 6, "JoinGroup", api_join_group, &join_group_req_schema, &join_group_resp_schema},
    {KAPI_HEARTBEAT, 0, 4, 4, "Heartbeat", api_heartbeat, &heartbeat_req_schema, &heartbeat_resp_schema},
    {KAPI_LEAVE_GROUP, 0, 5, 4, "LeaveGroup", api_leave_group, &leave_group_req_schema, &leave_group_resp_schema},
    {KAPI_SYNC_GROUP, 0, 5, 4, "SyncGroup", api_sync_group, &sync_group_req_schema, &sync_group_resp_schema},
    {KAPI_DESCRIBE_GROUPS, 0, 5, 5, "DescribeGroups", api_describe_groups,
     &describe_groups_req_schema, &describe_groups_resp_schema},
    {KAPI_LIST_GROUPS, 0, 4, 3, "ListGroups", api_list_groups, &list_groups_req_schema, &list_groups_resp_schema},
    {KAPI_DELETE_GROUPS, 0, 2, 2, "DeleteGroups", api_delete_groups,
     &delete_groups_req_schema, &delete_groups_resp_schema},
    {KAPI_OFFSET_DELETE, 0, 0, KV_MAX, "OffsetDelete", api_offset_delete,
     &offset_delete_req_schema, &offset_delete_resp_schema},
    {KAPI_DELETE_RECORDS, 0, 2, 2, "DeleteRecords", api_delete_records, &delete_records_req_schema,
     &delete_records_resp_schema},
    {KAPI_OFFSET_FOR_LEADER_EPOCH, 0, 4, 4, "OffsetForLeaderEpoch", api_offset_for_leader_epoch,
     &offset_for_leader_epoch_req_schema, &offset_for_leader_epoch_resp_schema},
    {KAPI_DESCRIBE_CONFIGS, 0, 4, 4, "DescribeConfigs", api_describe_configs, &describe_configs_req_schema,
     &describe_configs_resp_schema},
    {KAPI_ALTER_CONFIGS, 0, 2, 2, "AlterConfigs", api_alter_configs, &alter_configs_req_schema,
     &alter_configs_resp_schema},
    {KAPI_CREATE_PARTITIONS, 0, 3, 2, "CreatePartitions", api_create_partitions, &create_partitions_req_schema,
     &create_partitions_resp_schema},
    {KAPI_INCREMENTAL_ALTER_CONFIGS, 0, 1, 1, "IncrementalAlterConfigs", api_incremental_alter_configs,
     &incremental_alter_configs_req_schema, &incremental_alter_configs_resp_schema},
    {KAPI_DESCRIBE_CLUSTER, 0, 0, 0, "DescribeCluster", api_describe_cluster, &describe_cluster_req_schema,
     &describe_cluster_resp_schema},
};
const int api_table_len = (int)(sizeof api_table / sizeof api_table[0]);

static const api_def_t *by_key[KAPI__MAX];

const api_def_t *api_lookup(int16_t key) {
    static bool built;
    if (!built) {
        for (int i = 0; i < api_table_len; i++) by_key[api_table[i].key] = &api_table[i];
        built = true;
    }
    if (key < 0 || key >= KAPI__MAX) return NULL;
    return by_key[key];
}
