export { cidrString, interfaceName, ipString, nodeName, subnetString, vtepMacString } from "./fields.ts";
export { INTERFACE_NAME_PATTERN, INTERFACE_NAME_RULE, safeParseInterfaceName } from "../interface-name.ts";
export { safeParseSchema, schemaIssues, type SchemaIssue } from "./issues.ts";
export { backendSchema, networkConfigSchema, type NetworkConfig, type NetworkConfigInput } from "./network-config.ts";
export { clusterSnapshotSchema, nodeSnapshotSchema } from "./snapshot.ts";
export { clusterDescriptionSchema, type ClusterDescription, type ClusterDescriptionInput } from "./cluster-description.ts";
export { DEFAULT_LAB_STATE_DIR, LAB_BACKENDS, LAB_PREFIX_PATTERN, LAB_PREFIX_RULE, LAB_RUNTIMES, labStateSchema, safeParseLabState, startTimeFromStat, type LabAgent, type LabBackend, type LabNode, type LabPod, type LabRuntime, type LabState } from "./lab-state.ts";
export {
  annotationKeys,
  DEFAULT_ANNOTATION_PREFIX,
  kubeNodeSchema,
  kubeNodeAddresses,
  kubeNodePodCidrs,
  kubeNodeReady,
  nodeSnapshotFromKube,
  type KubeNode,
  type KubeNodeFields,
} from "./kube-node.ts";
