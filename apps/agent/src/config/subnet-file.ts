import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** What the CNI plugin reads from the subnet file (cni/netconf.ts subnetFileSchema): this node's pod CIDRs and pod MTU. */
export interface SubnetFileContent {
  podCidrs: string[];
  mtu: number;
}

/**
 * Keeps the subnet file the CNI plugin reads (netconf `subnetFile`, e.g. /run/flatnet/subnet.json) in step with the
 * agent: written atomically (temp file + rename: a plugin never reads half a file), and only when it changes.
 */
export class SubnetFileWriter {
  private last = "";
  private lastCheck = Number.NEGATIVE_INFINITY;

  constructor(
    readonly path: string,
    private readonly minIntervalMs = 5_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Writes when forced or at most once per interval; `read` is only called then (it may be costly). */
  update(read: () => SubnetFileContent | undefined, force = false): boolean {
    const now = this.now();
    if (!force && now - this.lastCheck < this.minIntervalMs) return false;
    this.lastCheck = now;
    const content = read();
    if (content === undefined) return false;
    const text = JSON.stringify({ podCidrs: content.podCidrs, mtu: content.mtu }) + "\n";
    if (text === this.last) return false;
    mkdirSync(dirname(this.path), { recursive: true });
    writeFileSync(`${this.path}.tmp`, text);
    renameSync(`${this.path}.tmp`, this.path);
    this.last = text;
    return true;
  }
}
