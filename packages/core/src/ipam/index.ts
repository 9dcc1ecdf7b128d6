export {
  ClusterIpam,
  MAX_NODE_CIDRS_PER_POOL,
  MAX_OCCUPY_BLOCKS,
  type ClusterIpamChange,
  type ClusterIpamConfig,
  type ClusterIpamEvent,
  type ClusterIpamState,
  type ClusterPoolUsage,
  type NodePodCidrs,
} from "./cluster-ipam.ts";
export {
  MAX_POOL_OFFSET,
  NodeIpam,
  type NodeIpamChange,
  type NodeIpamConfig,
  type NodeIpamEvent,
  type NodeIpamState,
  type NodePoolUsage,
  type PodAllocation,
  type PodIp,
  type PodKey,
} from "./node-ipam.ts";
