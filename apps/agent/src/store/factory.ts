import type { Datastore } from "./datastore.ts";
import { EmbeddedDatastore, type EmbeddedDatastoreOptions } from "./embedded.ts";

/** Which datastore to open and with what; one variant per kind (etcd and kubernetes are added here). */
export type DatastoreOptions = { kind: "embedded" } & EmbeddedDatastoreOptions;

/** Opens the datastore `options.kind` names. */
export async function createDatastore(options: DatastoreOptions): Promise<Datastore> {
  switch (options.kind) {
    case "embedded": {
      const { kind: _kind, ...rest } = options;
      return new EmbeddedDatastore(rest);
    }
  }
}
