import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { LabError } from "./errors.ts";

// `lab up --deploy`: the DaemonSet of deploy/ as kubelet would run it on one node, translated to `podman run`
// arguments. Every value comes from the manifests (read at run time), so a manifest change is what runs.

type Obj = Record<string, any>;

/** The Kubernetes objects `lab up --deploy` runs: the agent DaemonSet and its ConfigMap. */
export interface DeployManifests {
  daemonSet: Obj;
  configMap: Obj;
}

/** Reads every document of `deployDir`/*.yaml and picks the DaemonSet and ConfigMap named `flatnet*`. */
export function loadDeployManifests(deployDir: string, names = { daemonSet: "flatnet", configMap: "flatnet-config" }): DeployManifests {
  const docs = readdirSync(deployDir)
    .filter((file) => file.endsWith(".yaml"))
    .sort()
    .flatMap((file) => parseAllDocuments(readFileSync(join(deployDir, file), "utf8")).map((doc) => doc.toJS() as Obj));
  const find = (kind: string, name: string): Obj => {
    const found = docs.find((doc) => doc?.kind === kind && doc.metadata?.name === name);
    if (found === undefined) throw new LabError("ERR_LAB_INVALID_OPTION", `no ${kind} "${name}" in ${deployDir}/*.yaml`);
    return found;
  };
  return { daemonSet: find("DaemonSet", names.daemonSet), configMap: find("ConfigMap", names.configMap) };
}

/** The image as podman runs it: `["localhost/flatnet:dev"]` or `["--rootfs", dir]`, and the image config's env and working dir. */
export interface DeployImage {
  reference: string[];
  env: string[];
  workingDir?: string;
}

/** What the downward API and the node's filesystem are for one lab node. */
export interface DeployNode {
  name: string;
  /** status.hostIP (and status.podIP: the pod is hostNetwork). */
  hostIp: string;
  /** A directory standing for the node's `/`: every hostPath volume is mapped under it. */
  hostRoot: string;
  /** Per-pod directories: configMap files, emptyDirs, the service account. */
  podDir: string;
}

export interface HttpProbe {
  kind: "readiness" | "liveness" | "startup";
  url: string;
  timeoutSeconds: number;
}

/** One container of the pod as podman runs it: the files to create first, the `podman run` arguments, its probes. */
export interface ContainerRun {
  name: string;
  /** Directories to create (hostPath DirectoryOrCreate, emptyDir) and files to write (configMap keys, the token). */
  directories: string[];
  files: { path: string; content: string }[];
  runArgs: string[];
  probes: HttpProbe[];
}

/** Where the service account volume is mounted (kubelet's automount); here it holds a kubeconfig for the datastore. */
export const SERVICE_ACCOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount";

const podName = (manifests: DeployManifests, node: DeployNode): string => `${manifests.daemonSet.metadata.name}-${node.name}`;

/** The value the downward API gives `fieldPath` for this pod on this node; an unknown field is an error naming it. */
export function downwardValue(fieldPath: string, manifests: DeployManifests, node: DeployNode): string {
  switch (fieldPath) {
    case "spec.nodeName":
      return node.name;
    case "status.hostIP":
    case "status.podIP":
      return node.hostIp;
    case "metadata.name":
      return podName(manifests, node);
    case "metadata.namespace":
      return manifests.daemonSet.metadata.namespace ?? "default";
    default:
      throw new LabError("ERR_LAB_INVALID_OPTION", `env fieldRef "${fieldPath}" is not one lab up --deploy fills; known: spec.nodeName, status.hostIP, status.podIP, metadata.name, metadata.namespace`);
  }
}

/**
 * The `podman run` of one container of the DaemonSet's pod template (an init container or a container): command,
 * args, env (downward API filled), securityContext, hostNetwork, volumes (hostPath under the node's root, configMap
 * keys as files, emptyDir, the service account holding `kubeconfig`), and its httpGet probes.
 */
export function containerRun(manifests: DeployManifests, containerName: string, node: DeployNode, image: DeployImage, kubeconfig: string): ContainerRun {
  const spec = manifests.daemonSet.spec.template.spec as Obj;
  const container = [...(spec.initContainers ?? []), ...(spec.containers ?? [])].find((c: Obj) => c.name === containerName) as Obj | undefined;
  if (container === undefined) throw new LabError("ERR_LAB_INVALID_OPTION", `the DaemonSet has no container "${containerName}"`);
  const directories: string[] = [];
  const files: { path: string; content: string }[] = [];
  const args = ["run", "--name", `${podName(manifests, node)}-${container.name}`];
  if (spec.hostNetwork === true) args.push("--network", "host");
  else throw new LabError("ERR_LAB_INVALID_OPTION", "the DaemonSet's pod is not hostNetwork; lab up --deploy runs only a host-network agent");

  for (const variable of container.env ?? []) {
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath as string | undefined;
    if (fieldPath !== undefined) args.push("--env", `${variable.name}=${downwardValue(fieldPath, manifests, node)}`);
    else if (variable.value !== undefined) args.push("--env", `${variable.name}=${String(variable.value)}`);
    else throw new LabError("ERR_LAB_INVALID_OPTION", `env "${variable.name}" of ${container.name} has neither value nor fieldRef`);
  }
  args.push(...securityArgs(container.securityContext ?? {}));
  // What the runtime takes from the image config: its env under the manifest's, its working directory.
  const named = new Set<string>((container.env ?? []).map((variable: Obj) => String(variable.name)));
  for (const variable of image.env) if (!named.has(variable.slice(0, variable.indexOf("=")))) args.push("--env", variable);
  if (image.workingDir !== undefined) args.push("--workdir", image.workingDir);

  const volumes = new Map<string, Obj>((spec.volumes ?? []).map((volume: Obj) => [volume.name, volume]));
  const volumeRoot = join(node.podDir, "volumes");
  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.get(mount.name);
    if (volume === undefined) throw new LabError("ERR_LAB_INVALID_OPTION", `volumeMount "${mount.name}" of ${container.name} names no volume`);
    let source: string;
    if (volume.hostPath !== undefined) {
      source = join(node.hostRoot, volume.hostPath.path);
      if (volume.hostPath.type === "FileOrCreate") files.push({ path: source, content: "" });
      else directories.push(source);
    } else if (volume.configMap !== undefined || volume.emptyDir !== undefined) {
      source = join(volumeRoot, mount.name);
      directories.push(source);
      if (volume.configMap !== undefined) for (const [key, content] of Object.entries<string>(manifests.configMap.data ?? {})) files.push({ path: join(source, key), content });
    } else {
      throw new LabError("ERR_LAB_INVALID_OPTION", `volume "${mount.name}" is of a kind lab up --deploy does not map; known: hostPath, configMap, emptyDir`);
    }
    const options = [mount.readOnly === true ? "ro" : "rw", ...propagationOf(mount.mountPropagation)];
    args.push("--volume", `${source}:${mount.mountPath}:${options.join(",")}`);
  }
  if (spec.automountServiceAccountToken !== false) {
    // kubelet's projected token plus KUBERNETES_SERVICE_HOST; the lab's API server is plain HTTP, so a kubeconfig.
    const source = join(volumeRoot, "serviceaccount");
    files.push({ path: join(source, "kubeconfig"), content: kubeconfig });
    args.push("--volume", `${source}:${SERVICE_ACCOUNT_PATH}:ro`, "--env", `KUBECONFIG=${SERVICE_ACCOUNT_PATH}/kubeconfig`);
  }
  const command = container.command as string[] | undefined;
  if (command !== undefined && command.length > 0) args.push("--entrypoint", JSON.stringify(command));
  args.push(...image.reference, ...((container.args ?? []) as string[]).map(String));
  return { name: container.name, directories, files, runArgs: args, probes: httpProbes(container, node.hostIp) };
}

/** podman flags for a container securityContext; a field it cannot honour is an error naming it. */
export function securityArgs(context: Obj): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(context)) {
    switch (key) {
      case "runAsUser":
        args.push("--user", String(value));
        break;
      case "privileged":
        if (value === true) args.push("--privileged");
        break;
      case "allowPrivilegeEscalation":
        if (value === false) args.push("--security-opt", "no-new-privileges");
        break;
      case "readOnlyRootFilesystem":
        // kubelet mounts no tmpfs over a read-only root; podman would (/run, /tmp) unless told not to.
        if (value === true) args.push("--read-only", "--read-only-tmpfs=false");
        break;
      case "capabilities":
        for (const cap of value.drop ?? []) args.push("--cap-drop", cap);
        for (const cap of value.add ?? []) args.push("--cap-add", cap);
        break;
      case "seccompProfile":
        if (value.type === "Unconfined") args.push("--security-opt", "seccomp=unconfined");
        else if (value.type !== "RuntimeDefault") throw new LabError("ERR_LAB_INVALID_OPTION", `seccompProfile type "${value.type}" is not mapped; known: RuntimeDefault, Unconfined`);
        break;
      case "appArmorProfile":
        if (value.type === "Unconfined") args.push("--security-opt", "apparmor=unconfined");
        else if (value.type !== "RuntimeDefault") throw new LabError("ERR_LAB_INVALID_OPTION", `appArmorProfile type "${value.type}" is not mapped; known: RuntimeDefault, Unconfined`);
        break;
      default:
        throw new LabError("ERR_LAB_INVALID_OPTION", `securityContext.${key} is not mapped to podman; known: runAsUser, privileged, allowPrivilegeEscalation, readOnlyRootFilesystem, capabilities, seccompProfile, appArmorProfile`);
    }
  }
  return args;
}

function propagationOf(mode: string | undefined): string[] {
  if (mode === undefined || mode === "None") return ["rprivate"];
  if (mode === "HostToContainer") return ["rslave"];
  if (mode === "Bidirectional") return ["rshared"];
  throw new LabError("ERR_LAB_INVALID_OPTION", `mountPropagation "${mode}" is unknown; known: None, HostToContainer, Bidirectional`);
}

/** The container's httpGet probes as URLs on the node IP (a hostNetwork pod's IP), named ports resolved. */
export function httpProbes(container: Obj, hostIp: string): HttpProbe[] {
  const probes: HttpProbe[] = [];
  for (const kind of ["readiness", "liveness", "startup"] as const) {
    const probe = container[`${kind}Probe`] as Obj | undefined;
    if (probe === undefined) continue;
    if (probe.httpGet === undefined) throw new LabError("ERR_LAB_INVALID_OPTION", `${kind}Probe of ${container.name} is not httpGet; lab up --deploy runs httpGet probes only`);
    const port = typeof probe.httpGet.port === "number" ? probe.httpGet.port : (container.ports ?? []).find((p: Obj) => p.name === probe.httpGet.port)?.containerPort;
    if (port === undefined) throw new LabError("ERR_LAB_INVALID_OPTION", `${kind}Probe port "${probe.httpGet.port}" of ${container.name} names no container port`);
    const host = probe.httpGet.host ?? hostIp;
    const scheme = (probe.httpGet.scheme ?? "HTTP").toLowerCase();
    const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}${probe.httpGet.path ?? "/"}`;
    probes.push({ kind, url, timeoutSeconds: probe.timeoutSeconds ?? 1 });
  }
  return probes;
}
