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
