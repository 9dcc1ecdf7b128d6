import type { ClusterSnapshot, NodeSnapshot } from "@flatnet/core";
import type { NetworkConfig } from "../config/network-config.ts";

export type { NetworkConfig };

/** What a node tells the datastore about itself; the datastore adds its pod CIDRs. */
export interface NodeRegistration {
  name: string;
  /** At most one per family; the first one's family carries VXLAN. */
  underlayIps: string[];
  vtepMac: string;
  underlayMtu?: number;
}

/** Where nodes meet: the cluster's network config, node registrations with their pod CIDRs, liveness. */
export interface Datastore {
  readonly kind: "embedded" | "kubernetes" | "etcd";
  /** Cluster CIDRs, backend, node masks, VNI, port: stored once, by whoever creates the store. */
  config(): Promise<NetworkConfig>;
  /** Allocates the node's pod CIDRs atomically (core cluster IPAM); idempotent by name (same name, same CIDRs). */
  register(node: NodeRegistration): Promise<NodeSnapshot>;
  /** Keeps the node's lease alive; fails with code ERR_NOT_FOUND when the node is no longer registered. */
  heartbeat(name: string): Promise<void>;
  /** Removes the node and releases its pod CIDRs; a node not there is fine. */
  remove(name: string): Promise<void>;
  /** Live nodes only. */
  snapshot(): Promise<ClusterSnapshot>;
  /** A signal only (level-triggered: re-read the snapshot); returns unsubscribe. */
  watch(onChange: () => void): () => void;
  close(): Promise<void>;
}

/** A datastore failure with a code to branch on (ERR_NOT_FOUND, ERR_POOL_EXHAUSTED, ERR_STORE_CONFIG, ...). */
export class DatastoreError extends Error {
  override readonly name = "DatastoreError";
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
