import { ApiException, type CoordinationV1Api, type V1Lease, V1MicroTime } from "@kubernetes/client-node";

// Leader election on one coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: create the Lease,
// or take it over once it has not been renewed for leaseDurationSeconds *as observed locally* (no trust in the
// holder's clock), always with the read resourceVersion so a concurrent writer gets 409 Conflict and loses.

export interface LeaseLeaderOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  /** Local clock in ms; tests may pass their own. */
  now?: () => number;
}

export class LeaseLeader {
  private observedRecord = "";
  private observedAt = 0;
  private leading = false;

  constructor(private readonly options: LeaseLeaderOptions) {}

  get isLeader(): boolean {
    return this.leading;
  }

  private get duration(): number {
    return this.options.leaseDurationSeconds ?? 15;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** One acquire-or-renew round; returns whether this identity leads afterwards. Errors other than conflicts throw. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const { api, namespace, name, identity } = this.options;
    const now = this.now();
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: this.duration,
      renewTime: new V1MicroTime(now),
    };
    let current: V1Lease;
    try {
      current = await api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (!(error instanceof ApiException) || error.code !== 404) throw error;
      try {
        await api.createNamespacedLease({
          namespace,
          body: { metadata: { name, namespace }, spec: { ...spec, acquireTime: new V1MicroTime(now), leaseTransitions: 0 } },
        });
        return this.set(true);
      } catch (createError) {
        if (createError instanceof ApiException && createError.code === 409) return this.set(false);
        throw createError;
      }
    }
    const holder = current.spec?.holderIdentity ?? "";
    const record = `${holder}|${String(current.spec?.renewTime ?? "")}|${current.metadata?.resourceVersion ?? ""}`;
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = now;
    }
    const expired = this.observedAt + (current.spec?.leaseDurationSeconds ?? this.duration) * 1000 <= now;
    if (holder !== "" && holder !== identity && !expired) return this.set(false);
    const takeover = holder !== identity;
    const body: V1Lease = {
      ...current,
      spec: {
        ...current.spec,
        ...spec,
        ...(takeover ? { acquireTime: new V1MicroTime(now), leaseTransitions: (current.spec?.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      const updated = await api.replaceNamespacedLease({ name, namespace, body });
      this.observedRecord = `${identity}|${String(updated.spec?.renewTime ?? "")}|${updated.metadata?.resourceVersion ?? ""}`;
      this.observedAt = now;
      return this.set(true);
    } catch (error) {
      if (error instanceof ApiException && error.code === 409) return this.set(false);
      throw error;
    }
  }

  /** Gives the lease up (holder cleared) so another agent takes over at once instead of after the duration. */
  async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    const { api, namespace, name } = this.options;
    try {
      const current = await api.readNamespacedLease({ name, namespace });
      if (current.spec?.holderIdentity !== this.options.identity) return;
      await api.replaceNamespacedLease({ name, namespace, body: { ...current, spec: { ...current.spec, holderIdentity: "" } } });
    } catch {
      // Best effort: the lease expires by itself.
    }
  }

  private set(leading: boolean): boolean {
    this.leading = leading;
    return leading;
  }
}
