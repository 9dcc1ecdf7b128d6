import { constants } from "node:os";
import { POD_BRIDGE, safeParseIp } from "@flatnet/core";
import { KernelError, type KernelErrorCode, type NetnsTarget } from "./exec.ts";
import { type AttachedPod, attachedPod, hex, hostVethName, type PodAttachment, type PodLink, type PodLinkSpec, type PodRef } from "./pod.ts";

// ADD's two kernel steps (pod.ts createPodLink + configurePodLink) done with rtnetlink from the CNI worker itself
// instead of two `ip` processes: the same requests `ip` sends, on a NETLINK_ROUTE socket opened inside the target
// namespace (setns on this thread, socket, setns back), through bun:ffi's libc. Only the Bun worker uses it (serve.ts);
// everything else (DEL, CHECK, GC, the in-process plugin) stays on iproute2. Messages follow rtnetlink(7).

/** The libc calls this needs, bound through bun:ffi. */
interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setns(fd: number, nstype: number): number;
  open(path: Uint8Array, flags: number): number;
  close(fd: number): number;
  send(fd: number, buf: Uint8Array, len: number, flags: number): number | bigint;
  recv(fd: number, buf: Uint8Array, len: number, flags: number): number | bigint;
}

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0o2000000;
const O_RDONLY_CLOEXEC = 0o2000000;
const CLONE_NEWNET = 0x40000000;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
const NLMSG_ERROR = 2;
const RTM_NEWLINK = 16;
const RTM_DELLINK = 17;
const RTM_GETLINK = 18;
const RTM_NEWADDR = 20;
const RTM_NEWROUTE = 24;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFF_UP = 0x1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_F_NODAD = 0x02;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const AF_INET = 2;
const AF_INET6 = 10;

const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
const ENODEV = constants.errno.ENODEV;
const EEXIST = constants.errno.EEXIST;
const CLASSIFIED_ERRNOS: ReadonlyMap<number, KernelErrorCode> = new Map(
  (["ENODEV", "EEXIST", "ESRCH", "ENOENT", "EPERM"] as const).map((name) => [constants.errno[name], name]),
);

/** The code of an rtnetlink errno (the classification exec.ts does for iproute2's text). */
export function classifyErrno(errno: number): KernelErrorCode {
  return CLASSIFIED_ERRNOS.get(errno) ?? "ERR_KERNEL_COMMAND";
}

/** A refused rtnetlink request; the message reads like iproute2's ("RTNETLINK answers: ..."). */
function netlinkError(errno: number, what: string): KernelError {
  const text = errno === EEXIST ? "File exists" : errno === ENODEV ? "No such device" : (ERRNO_NAMES.get(errno) ?? `errno ${errno}`);
  return new KernelError(classifyErrno(errno), `${what}: RTNETLINK answers: ${text}`);
}

const namespaceGone = (path: string) => new KernelError("ENONS", `Cannot open network namespace "${path}": No such file or directory`);
const deviceMissing = (name: string) => new KernelError("ENODEV", `Cannot find device "${name}"`);

// ---- message building ----

class Message {
  private parts: Buffer[] = [];
  constructor(
    readonly type: number,
    readonly flags: number,
  ) {}
  header(bytes: Buffer): this {
    this.parts.push(bytes);
    return this;
  }
  attr(type: number, payload: Buffer): this {
    this.parts.push(attr(type, payload));
    return this;
  }
  encode(seq: number): Buffer {
    const body = Buffer.concat(this.parts);
    const head = Buffer.alloc(16);
    head.writeUInt32LE(16 + body.length, 0);
    head.writeUInt16LE(this.type, 4);
    head.writeUInt16LE(this.flags | NLM_F_REQUEST, 6);
    head.writeUInt32LE(seq, 8);
    return Buffer.concat([head, body]);
  }
}

function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const out = Buffer.alloc((len + 3) & ~3);
  out.writeUInt16LE(len, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};
const str = (s: string) => Buffer.from(`${s}\0`, "utf8");

function ifinfomsg(index: number, flags: number, change: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** "10.244.1.5" / "fd00::5" as bytes (network order) with the address family. */
export function ipBytes(ip: string): { family: number; bytes: Buffer } {
  const parsed = safeParseIp(ip);
  if (!parsed.success) throw new Error(`not an IP address: ${JSON.stringify(ip)} (${parsed.error.message})`);
  const bytes = Buffer.alloc(parsed.data.family === "IPv4" ? 4 : 16);
  let value = parsed.data.value;
  for (let at = bytes.length - 1; at >= 0; at--, value >>= 8n) bytes[at] = Number(value & 0xffn);
  return { family: parsed.data.family === "IPv4" ? AF_INET : AF_INET6, bytes };
}

function macOf(attrs: Map<number, Buffer>): string {
  const raw = attrs.get(IFLA_ADDRESS);
  return raw === undefined ? "" : hex(raw, ":");
}

// ---- the socket ----

interface Reply {
  error?: number;
  link?: { index: number; attrs: Map<number, Buffer> };
}

/** A NETLINK_ROUTE socket bound to one namespace (it stays there: a socket keeps the namespace it was created in). */
class RtSocket {
  private seq = 1;
  private readonly buffer = Buffer.alloc(65536);
  constructor(
    private readonly libc: Libc,
    private readonly fd: number,
  ) {}

  request(message: Message, what: string): Reply {
    const seq = this.seq++;
    const out = message.encode(seq);
    if (Number(this.libc.send(this.fd, out, out.length, 0)) !== out.length) throw new Error(`${what}: netlink send failed`);
    for (;;) {
      const n = Number(this.libc.recv(this.fd, this.buffer, this.buffer.length, 0));
      if (n <= 0) throw new Error(`${what}: netlink recv failed`);
      for (let at = 0; at + 16 <= n; ) {
        const len = this.buffer.readUInt32LE(at);
        const type = this.buffer.readUInt16LE(at + 4);
        const mseq = this.buffer.readUInt32LE(at + 8);
        if (len < 16) break;
        if (mseq === seq) {
          if (type === NLMSG_ERROR) return { error: -this.buffer.readInt32LE(at + 16) };
          if (type === RTM_NEWLINK) return { link: { index: this.buffer.readInt32LE(at + 16 + 4), attrs: parseAttrs(this.buffer.subarray(at + 32, at + len)) } };
        }
        at += (len + 3) & ~3;
      }
    }
  }

  /** Sends a change with NLM_F_ACK; throws a KernelError on a negative answer. */
  change(message: Message, what: string): void {
    const reply = this.request(message, what);
    if (reply.error !== undefined && reply.error !== 0) throw netlinkError(reply.error, what);
  }

  /** The link named `name`: index and attributes, or undefined when there is none. */
  link(name: string): { index: number; attrs: Map<number, Buffer> } | undefined {
    const reply = this.request(new Message(RTM_GETLINK, 0).header(ifinfomsg(0, 0, 0)).attr(IFLA_IFNAME, str(name)), `link show ${name}`);
    if (reply.error === ENODEV) return undefined;
    if (reply.error !== undefined && reply.error !== 0) throw netlinkError(reply.error, `link show ${name}`);
    return reply.link;
  }

  /** Deletes the link named `name`; false when there is none. */
  deleteLink(name: string): boolean {
    const link = this.link(name);
    if (link === undefined) return false;
    this.change(new Message(RTM_DELLINK, NLM_F_ACK).header(ifinfomsg(link.index, 0, 0)), `link del ${name}`);
    return true;
  }

  close(): void {
    this.libc.close(this.fd);
  }
}

function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (let at = 0; at + 4 <= buf.length; ) {
    const len = buf.readUInt16LE(at);
    if (len < 4) break;
    out.set(buf.readUInt16LE(at + 2) & 0x3fff, buf.subarray(at + 4, at + len));
    at += (len + 3) & ~3;
  }
  return out;
}

// ---- namespaces ----

function nsPath(target: NetnsTarget): string {
  return "name" in target ? `/run/netns/${target.name}` : target.path;
}

/** The rtnetlink operations of ADD; createNetlinkPodOps returns undefined where bun:ffi is not available. */
export interface NetlinkPodOps {
  createLink(spec: PodLinkSpec): Promise<PodLink>;
  configureLink(spec: PodAttachment, link: PodLink): Promise<AttachedPod>;
  /** DEL's kernel step: deletes the host veth (the pod end goes with it); a veth or namespace already gone is false. */
  detach(ref: PodRef): Promise<{ removed: boolean }>;
}

/** Binds libc through bun:ffi (the CNI worker runs under Bun); undefined under Node or when binding fails. */
export async function createNetlinkPodOps(): Promise<NetlinkPodOps | undefined> {
  if ((globalThis as { Bun?: unknown }).Bun === undefined) return undefined;
  let libc: Libc;
  try {
    const specifier = "bun:ffi";
    const ffi = (await import(specifier)) as {
      dlopen(path: string, symbols: Record<string, { args: string[]; returns: string }>): { symbols: Libc };
    };
    libc = ffi.dlopen("libc.so.6", {
      socket: { args: ["i32", "i32", "i32"], returns: "i32" },
      setns: { args: ["i32", "i32"], returns: "i32" },
      open: { args: ["ptr", "i32"], returns: "i32" },
      close: { args: ["i32"], returns: "i32" },
      send: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
      recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
    }).symbols;
  } catch {
    return undefined;
  }
  const openNs = (path: string): number => {
    const fd = libc.open(str(path), O_RDONLY_CLOEXEC);
    if (fd < 0) throw namespaceGone(path);
    return fd;
  };
  /** Runs `fn` with a rtnetlink socket created inside the namespace at `path`; this thread returns to its own after. */
  const withSocket = <T>(path: string, fn: (sock: RtSocket) => T): T => {
    const home = openNs("/proc/thread-self/ns/net");
    let target = -1;
    let fd = -1;
    try {
      target = openNs(path);
      if (libc.setns(target, CLONE_NEWNET) !== 0) throw new Error(`cannot enter network namespace ${path}`);
      try {
        fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
      } finally {
        if (libc.setns(home, CLONE_NEWNET) !== 0) {
          // Never keep running in a pod's namespace: the worker would act in the wrong place from now on.
          process.stderr.write("flatnet-cni worker: cannot return to its own network namespace; exiting\n");
          process.exit(70);
        }
      }
      if (fd < 0) throw new Error(`cannot open a netlink socket in ${path}`);
      const sock = new RtSocket(libc, fd);
      try {
        return fn(sock);
      } finally {
        sock.close();
      }
    } finally {
      if (target >= 0) libc.close(target);
      libc.close(home);
    }
  };
  const deleteHost = (nodeNetns: string, name: string) => {
    try {
      withSocket(`/run/netns/${nodeNetns}`, (sock) => sock.deleteLink(name));
    } catch {
      // best effort, as pod.ts's deleteLink on a failed ADD: DEL and GC sweep what is left
    }
  };

  const createLink = async (spec: PodLinkSpec): Promise<PodLink> => {
    const hostIfName = hostVethName(spec.containerId, spec.ifName);
    const bridge = spec.bridge ?? POD_BRIDGE;
    const podNs = openNs(nsPath(spec.podNetns));
    try {
      return withSocket(`/run/netns/${spec.nodeNetns}`, (sock) => {
        const master = sock.link(bridge);
        if (master === undefined) throw deviceMissing(bridge); // ADD creates the bridge and retries
        const peer = Buffer.concat([ifinfomsg(0, 0, 0), attr(IFLA_IFNAME, str(spec.ifName)), attr(IFLA_MTU, u32(spec.mtu)), attr(IFLA_NET_NS_FD, u32(podNs))]);
        const data = attr(VETH_INFO_PEER, peer);
        const linkinfo = Buffer.concat([attr(IFLA_INFO_KIND, str("veth")), attr(IFLA_INFO_DATA, data)]);
        const add = () =>
          new Message(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)
            .header(ifinfomsg(0, IFF_UP, IFF_UP))
            .attr(IFLA_IFNAME, str(hostIfName))
            .attr(IFLA_MTU, u32(spec.mtu))
            .attr(IFLA_MASTER, u32(master.index))
            .attr(IFLA_LINKINFO, linkinfo);
        try {
          sock.change(add(), `link add ${hostIfName}`);
        } catch (error) {
          if (!(error instanceof KernelError && error.code === "EEXIST")) throw error;
          // A retried ADD: drop our own leftover host veth (its peer goes with it) and try once more, as pod.ts does.
          sock.deleteLink(hostIfName);
          sock.change(add(), `link add ${hostIfName}`);
        }
        const host = sock.link(hostIfName);
        return { hostIfName, hostMac: host === undefined ? "" : macOf(host.attrs) };
      });
    } finally {
      libc.close(podNs);
    }
  };

  const configureLink = async (spec: PodAttachment, link: PodLink): Promise<AttachedPod> => {
    try {
      const podMac = withSocket(nsPath(spec.podNetns), (sock) => {
        const up = (name: string) => {
          const l = sock.link(name);
          if (l === undefined) throw deviceMissing(name);
          sock.change(new Message(RTM_NEWLINK, NLM_F_ACK).header(ifinfomsg(l.index, IFF_UP, IFF_UP)), `link set ${name} up`);
          return l;
        };
        up("lo");
        const pod = up(spec.ifName);
        for (const cidr of spec.addresses) {
          const [ip = "", prefix = ""] = cidr.split("/");
          const { family, bytes } = ipBytes(ip);
          const head = Buffer.alloc(8);
          head.writeUInt8(family, 0);
          head.writeUInt8(Number(prefix), 1);
          head.writeUInt8(family === AF_INET6 ? IFA_F_NODAD : 0, 2);
          head.writeUInt32LE(pod.index, 4);
          sock.change(new Message(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).header(head).attr(IFA_LOCAL, bytes).attr(IFA_ADDRESS, bytes), `addr add ${cidr} dev ${spec.ifName}`);
        }
        for (const gateway of spec.gateways) {
          const { family, bytes } = ipBytes(gateway);
          const head = Buffer.alloc(12);
          head.writeUInt8(family, 0); // dst_len 0: the default route
          head.writeUInt8(254, 4); // RT_TABLE_MAIN
          head.writeUInt8(3, 5); // RTPROT_BOOT, as `ip route add`
          head.writeUInt8(0, 6); // RT_SCOPE_UNIVERSE
          head.writeUInt8(1, 7); // RTN_UNICAST
          sock.change(new Message(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL).header(head).attr(RTA_GATEWAY, bytes).attr(RTA_OIF, u32(pod.index)), `route add default via ${gateway}`);
        }
        return macOf(pod.attrs);
      });
      return attachedPod(spec, link, podMac);
    } catch (error) {
      deleteHost(spec.nodeNetns, link.hostIfName);
      throw error;
    }
  };

  const detach = async (ref: PodRef): Promise<{ removed: boolean }> => {
    const name = hostVethName(ref.containerId, ref.ifName);
    try {
      return withSocket(`/run/netns/${ref.nodeNetns}`, (sock) => {
        try {
          return { removed: sock.deleteLink(name) };
        } catch (error) {
          if (error instanceof KernelError && error.code === "ENODEV") return { removed: false }; // a concurrent DEL won
          throw error;
        }
      });
    } catch (error) {
      if (error instanceof KernelError && error.code === "ENONS") return { removed: false }; // the node namespace is gone: nothing to remove
      throw error;
    }
  };

  return { createLink, configureLink, detach };
}
