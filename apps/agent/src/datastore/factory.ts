import type { Datastore } from "./datastore.ts";
import { EmbeddedDatastore, type EmbeddedDatastoreOptions } from "./embedded.ts";
import { EtcdDatastore, type EtcdDatastoreOptions } from "./etcd-datastore.ts";
import { KubeDatastore, type KubeDatastoreOptions } from "./kube-datastore.ts";
import { instrumentDatastore } from "./datastore-stats.ts";

/** Which datastore to open and with what; one variant per kind. */
export type DatastoreOptions =
  | ({ kind: "embedded" } & EmbeddedDatastoreOptions)
  | ({ kind: "etcd" } & EtcdDatastoreOptions)
  | ({ kind: "kubernetes" } & KubeDatastoreOptions);

/** Opens the datastore `options.kind` names, with its calls counted for the metrics. */
export async function createDatastore(options: DatastoreOptions): Promise<Datastore> {
  return instrumentDatastore(await openDatastore(options));
}

async function openDatastore(options: DatastoreOptions): Promise<Datastore> {
  switch (options.kind) {
    case "embedded": {
      const { kind: _kind, ...rest } = options;
      return new EmbeddedDatastore(rest);
    }
    case "etcd": {
      const { kind: _kind, ...rest } = options;
      return new EtcdDatastore(rest);
    }
    case "kubernetes": {
      const { kind: _kind, ...rest } = options;
      const store = new KubeDatastore(rest);
      await store.start();
      return store;
    }
  }
}
