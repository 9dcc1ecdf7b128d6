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
