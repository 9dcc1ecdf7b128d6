// The three patch types the apiserver accepts for built-in resources, as far as flatnet's objects need them.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export class PatchError extends Error {}

/** RFC 7386 JSON merge patch: objects merge, null deletes, anything else (arrays too) replaces. */
export function applyMergePatch<T>(target: T, patch: unknown): T {
  return merge(structuredClone(target) as Json, patch as Json, undefined) as T;
}

// Strategic merge: like a merge patch, but lists with a merge strategy merge (a primitive list by union,
// an object list by its merge key) and "$patch": "delete" / "replace" directives apply.
// Merge keys from k8s.io/api core/v1 types for the fields a Node and a Lease carry.
const MERGE_KEYS: Record<string, string | "primitive"> = {
  "metadata.finalizers": "primitive",
  "spec.podCIDRs": "primitive",
  "spec.taints": "key",
  "status.addresses": "type",
  "status.conditions": "type",
};

export function applyStrategicMergePatch<T>(target: T, patch: unknown): T {
  return merge(structuredClone(target) as Json, patch as Json, "") as T;
}

function merge(target: Json, patch: Json, path: string | undefined): Json {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  if (path !== undefined && patch["$patch"] === "replace") {
    const { $patch: _, ...rest } = patch;
    return rest;
  }
  const out: { [key: string]: Json } = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (path !== undefined && key.startsWith("$")) continue;
    const childPath = path === undefined ? undefined : path ? `${path}.${key}` : key;
    if (value === null) {
      delete out[key];
    } else if (childPath !== undefined && Array.isArray(value) && MERGE_KEYS[childPath]) {
      out[key] = mergeList(Array.isArray(out[key]) ? (out[key] as Json[]) : [], value, MERGE_KEYS[childPath]!);
    } else {
      out[key] = merge(out[key] ?? null, value, childPath);
    }
  }
  return out;
}

function mergeList(current: Json[], patch: Json[], mergeKey: string): Json[] {
  if (mergeKey === "primitive") {
    const out = [...current];
    for (const item of patch) if (!out.some((c) => JSON.stringify(c) === JSON.stringify(item))) out.push(item);
    return out;
  }
  const out = [...current];
  for (const item of patch) {
    if (item === null || typeof item !== "object" || Array.isArray(item)) throw new PatchError(`list item ${JSON.stringify(item)} has no merge key "${mergeKey}"`);
    const index = out.findIndex((c) => c !== null && typeof c === "object" && !Array.isArray(c) && c[mergeKey] === item[mergeKey]);
    if (item["$patch"] === "delete") {
      if (index >= 0) out.splice(index, 1);
    } else if (index >= 0) {
      out[index] = merge(out[index]!, item, "");
    } else {
      out.push(item);
    }
  }
  return out;
}

/** RFC 6902 JSON patch (add, remove, replace, move, copy, test), all or nothing. */
export function applyJsonPatch<T>(target: T, operations: unknown): T {
  if (!Array.isArray(operations)) throw new PatchError("json patch must be an array of operations");
  let doc = structuredClone(target) as Json;
  for (const op of operations as { op: string; path: string; from?: string; value?: Json }[]) {
    switch (op.op) {
      case "add": doc = setAt(doc, op.path, structuredClone(op.value ?? null), "add"); break;
      case "replace": doc = setAt(doc, op.path, structuredClone(op.value ?? null), "replace"); break;
      case "remove": doc = removeAt(doc, op.path); break;
      case "move": { const v = getAt(doc, op.from ?? ""); doc = setAt(removeAt(doc, op.from ?? ""), op.path, v, "add"); break; }
      case "copy": doc = setAt(doc, op.path, structuredClone(getAt(doc, op.from ?? "")), "add"); break;
      case "test":
        if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value)) {
          throw new PatchError(`the json patch "test" operation failed at "${op.path}"`);
        }
        break;
      default: throw new PatchError(`unknown json patch operation "${op.op}"`);
    }
  }
  return doc as T;
}

function pointer(path: string): string[] {
  if (path === "") return [];
  if (!path.startsWith("/")) throw new PatchError(`json pointer "${path}" must start with "/"`);
  return path.slice(1).split("/").map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function getAt(doc: Json, path: string): Json {
  let current: Json = doc;
  for (const token of pointer(path)) {
    if (current === null || typeof current !== "object") throw new PatchError(`json pointer "${path}" does not exist`);
    const next: Json | undefined = Array.isArray(current) ? current[Number(token)] : current[token];
    if (next === undefined) throw new PatchError(`json pointer "${path}" does not exist`);
    current = next;
  }
  return current;
}

function setAt(doc: Json, path: string, value: Json, mode: "add" | "replace"): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return value;
  const parent = getAt(doc, "/" + tokens.slice(0, -1).map((t) => t.replace(/~/g, "~0").replace(/\//g, "~1")).join("/"));
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const index = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new PatchError(`json pointer "${path}": index out of range`);
    if (mode === "add") parent.splice(index, 0, value);
    else parent[index] = value;
  } else if (parent !== null && typeof parent === "object") {
    if (mode === "replace" && !(last in parent)) throw new PatchError(`json pointer "${path}" does not exist`);
    parent[last] = value;
  } else {
    throw new PatchError(`json pointer "${path}": parent is not a container`);
  }
  return doc;
}

function removeAt(doc: Json, path: string): Json {
  const tokens = pointer(path);
  const parent = getAt(doc, tokens.length > 1 ? "/" + tokens.slice(0, -1).map((t) => t.replace(/~/g, "~0").replace(/\//g, "~1")).join("/") : "");
  const last = tokens[tokens.length - 1]!;
  if (Array.isArray(parent)) {
    const index = Number(last);
    if (!Number.isInteger(index) || index < 0 || index >= parent.length) throw new PatchError(`json pointer "${path}": index out of range`);
    parent.splice(index, 1);
  } else if (parent !== null && typeof parent === "object" && last in parent) delete parent[last];
  else throw new PatchError(`json pointer "${path}" does not exist`);
  return doc;
}
