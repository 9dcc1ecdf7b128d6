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
    // Each constructor reads only its own options; `kind` is left unread.
    case "embedded":
      return new EmbeddedDatastore(options);
    case "etcd":
      return new EtcdDatastore(options);
    case "kubernetes": {
      const store = new KubeDatastore(options);
      await store.start();
      return store;
    }
  }
}
