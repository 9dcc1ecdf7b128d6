import { type ChildProcess, execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_PROBE_OPTIONS } from "@flatnet/core";
import { ipBatch, isRoot, ProbeTopology } from "./topology.ts";

// Issue 14.1 bar: from a pod, POST /v1/dial to its node's responder and to other pods' responders, targets
// 127.0.0.1:10248 (kubelet's healthz), 169.254.169.254:80 (cloud metadata) and a non-responder IP: refused, and
// counting listeners on every one of those addresses see nothing. A 2-node x 2-pod host-gw network in namespaces
// fn-hn-g* (ProbeTopology), with node-1's responder run the way the agent runs it.

const PORT = 7471;
const TOKEN = "fn-hn-probe-token-0123456789";
const run = promisify(execFile);
const here = (file: string): string => fileURLToPath(new URL(file, import.meta.url));

const root = isRoot();
if (!root) console.log("dial guard tests skipped: they need root to create network namespaces");

describe.skipIf(!root)("a responder is no relay (issue 14.1)", () => {
  const topo = new ProbeTopology("g", 2, 2, "fn-hn-");
  const hits: { hit: string; from: string }[] = [];
  const attacker = (): string => topo.pods[0]!.netns; // pod-1-0, 10.244.1.2
  const node1 = (): string => topo.nodes[0]!.netns;
  const pod11 = (): string => topo.pods[1]!.netns; // pod-1-1, 10.244.1.3

  const count = (child: ChildProcess): void => {
    child.stdout!.on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) if (line.startsWith('{"hit"')) hits.push(JSON.parse(line) as { hit: string; from: string });
    });
  };

  beforeAll(async () => {
    topo.up();
    ipBatch(node1(), ["addr add 169.254.169.254/32 dev lo"]);
    // A node-network address that is no responder; routes back to the pods, so a connection to it would complete.
    ipBatch(topo.underlay, ["addr add 172.31.0.99/24 dev br0", ...topo.nodes.map((n) => `route add ${n.podCidr} via ${n.ip}`)]);
    await topo.startResponders(PORT, TOKEN);
    const n = topo.nodes[0]!;
    await topo.startProcess("node:node-1", n.netns, [
      here("./node-responder-main.ts"),
      JSON.stringify({ netns: n.netns, node: n.name, underlayIps: [n.ip], podCidrs: [n.podCidr], port: PORT, controlSocket: join(topo.dir, "node-1.probe.sock") }),
    ]);
    const listener = here("./counting-listener.ts");
    count(await topo.startProcess("count:node-1", node1(), [listener, "tcp:127.0.0.1:10248", "tcp:169.254.169.254:80", "udp:169.254.169.254:80"]));
    count(await topo.startProcess("count:pod-1-1", pod11(), [listener, "tcp:127.0.0.1:10248", "udp:127.0.0.1:10248"]));
    count(await topo.startProcess("count:underlay", topo.underlay, [listener, "tcp:172.31.0.99:7471", "udp:172.31.0.99:7471", "tcp:172.31.0.99:22"]));
  }, 90_000);

  afterAll(() => topo.cleanup());

  /** POST /v1/dial with curl from inside a namespace; the status and the problem body. */
  async function postDial(from: string, url: string, targets: { ip: string; port: number }[], token?: string): Promise<{ status: number; body: { title?: string; detail?: string } | string }> {
    const file = join(topo.dir, `dial-${Math.random().toString(36).slice(2)}.json`);
    const options = { ...DEFAULT_PROBE_OPTIONS, udpCount: 1, tcpCount: 1, mtuTcpBytes: 16384, podMtu: 1500, timeoutMs: 500, retries: 0, concurrency: 4 };
    writeFileSync(file, JSON.stringify({ v: 1, runId: "attack", options, targets: targets.map((t, i) => ({ pairId: `t${i}`, ...t })) }));
    const { stdout } = await run("ip", [
      "netns", "exec", from, "curl", "-s", "--max-time", "20", "-X", "POST", "-H", "content-type: application/json",
      ...(token === undefined ? [] : ["-H", `x-flatnet-probe-token: ${token}`]), "--data-binary", `@${file}`, "-w", "\n%{http_code}", url,
    ]);
    const lines = stdout.trimEnd().split("\n");
    const status = Number(lines.pop());
    const text = lines.join("\n");
    try {
      return { status, body: JSON.parse(text) as { title?: string; detail?: string } };
    } catch {
      return { status, body: text };
    }
  }

  const FORBIDDEN = [
    { ip: "127.0.0.1", port: 10248 },
    { ip: "169.254.169.254", port: 80 },
    { ip: "172.31.0.99", port: PORT },
  ];
  const NODE = `http://172.31.0.11:${PORT}/v1/dial`;
  const POD_SAME_NODE = `http://10.244.1.3:${PORT}/v1/dial`;
  const POD_OTHER_NODE = `http://10.244.2.2:${PORT}/v1/dial`;

  it.each([
    ["its node's responder, without a token", NODE, undefined, 403, "ERR_DIAL_FORBIDDEN"],
    ["its node's responder, even with the token", NODE, TOKEN, 403, "ERR_DIAL_FORBIDDEN"],
    ["a pod on its node, without a token", POD_SAME_NODE, undefined, 401, "ERR_DIAL_UNAUTHORIZED"],
    ["a pod on another node, with a wrong token", POD_OTHER_NODE, "fn-hn-wrong-token-0123456789", 401, "ERR_DIAL_UNAUTHORIZED"],
  ])("%s: refused", async (_, url, token, status, title) => {
    const answer = await postDial(attacker(), url, FORBIDDEN, token);
    expect([answer.status, typeof answer.body === "object" ? answer.body.title : answer.body]).toEqual([status, title]);
  });

  it.each(FORBIDDEN.flatMap((target) => [POD_SAME_NODE, POD_OTHER_NODE].map((url) => [`${target.ip}:${target.port}`, url, target] as const)))(
    "with the token, target %s via %s is refused naming the rule",
    async (_, url, target) => {
      const answer = await postDial(attacker(), url, [{ ip: "10.244.2.3", port: PORT }, target], TOKEN);
      expect(answer.status).toBe(400);
      expect(answer.body).toMatchObject({ title: "ERR_DIAL_TARGET", detail: expect.stringContaining(`target "${target.ip}:${target.port}" (pair "t1")`) });
    },
  );

  it.each([
    ["a hostname", { ip: "metadata.google.internal", port: PORT }, "is not an IP literal"],
    ["another port of a pod", { ip: "10.244.2.3", port: 22 }, "is not on the probe port 7471"],
  ])("with the token, %s is refused", async (_, target, rule) => {
    const answer = await postDial(attacker(), POD_OTHER_NODE, [target], TOKEN);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ title: "ERR_DIAL_TARGET", detail: expect.stringContaining(rule) });
  });

  it("with the token, a responder target is dialled (the orchestrator's path still works)", async () => {
    const answer = await postDial(attacker(), POD_OTHER_NODE, [{ ip: "10.244.1.3", port: PORT }], TOKEN);
    expect(answer.status).toBe(200);
    // One target: the NDJSON answer is a single line.
    expect(answer.body).toMatchObject({ pairId: "t0", controlOk: true, tcp: { ok: true } });
  });

  it("no connection or datagram reached any counting listener", async () => {
    // Markers sent now, after every refusal was answered: once each listener reports its marker, what it saw is final.
    const marker = async (from: string, ip: string, port: number): Promise<void> => {
      await run("ip", ["netns", "exec", from, "curl", "-s", "--max-time", "5", `http://${ip}:${port}/`]).catch(() => undefined);
      await run("ip", ["netns", "exec", from, "sh", "-c", `echo marker | socat - UDP-SENDTO:${ip}:${port}`]).catch(() => undefined);
    };
    await marker(attacker(), "169.254.169.254", 80);
    await marker(attacker(), "172.31.0.99", PORT);
    await marker(pod11(), "127.0.0.1", 10248);
    const expected = [
      { hit: "tcp:169.254.169.254:80", from: "10.244.1.2" },
      { hit: "udp:169.254.169.254:80", from: "10.244.1.2" },
      { hit: "tcp:172.31.0.99:7471", from: "10.244.1.2" },
      { hit: "udp:172.31.0.99:7471", from: "10.244.1.2" },
      { hit: "tcp:127.0.0.1:10248", from: "127.0.0.1" },
      { hit: "udp:127.0.0.1:10248", from: "127.0.0.1" },
    ];
    const key = (h: { hit: string; from: string }): string => `${h.hit} ${h.from}`;
    await expect.poll(() => hits.map(key).sort(), { timeout: 10_000 }).toEqual(expected.map(key).sort());
    expect(hits.map(key).sort()).toEqual(expected.map(key).sort());
  });
});
