import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "./helpers.ts";

// The native CNI client (apps/agent/src/cni/native/flatnet-client.c), compiled from source here so the test checks the
// source as it is (no build needed): a worker that drops the connection while the request is still being written.

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SOURCE = join(root, "apps", "agent", "src", "cni", "native", "flatnet-client.c");
const haveCc = spawnSync("cc", ["--version"]).status === 0;

function run(binary: string, env: Record<string, string>, stdin: string): Promise<{ code: number | null; signal: string | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { env, stdio: ["pipe", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout }));
    child.stdin.on("error", () => {}); // the client may exit before reading all of it
    child.stdin.end(stdin);
  });
}

describe.skipIf(!haveCc)("native CNI client: the worker drops the connection mid-request", () => {
  const dir = tempDir("fn-tz-native-");
  const socket = join(dir.path, "worker.sock");
  let client = "";
  let server: Server;

  beforeAll(async () => {
    mkdirSync(join(dir.path, "bin"));
    client = join(dir.path, "bin", "flatnet");
    const cc = spawnSync("cc", ["-O2", "-Wall", "-Wextra", "-Werror", "-o", client, SOURCE], { encoding: "utf8" });
    if (cc.status !== 0) throw new Error(`cc: ${cc.stderr}`);
    // The fallback: prints a marker, so the test sees that the client exec'd it.
    writeFileSync(join(dir.path, "bin", "flatnet-bun"), '#!/bin/sh\necho \'{"fallback":"flatnet-bun"}\'\nexit 0\n');
    chmodSync(join(dir.path, "bin", "flatnet-bun"), 0o755);
    // Accepts and closes at once without reading: the client's write of a request larger than the socket buffer fails (EPIPE).
    server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    dir.remove();
  });

  // 2 MiB of netconf: more than a unix socket buffers, so the write is still going when the peer closes.
  const stdin = () => JSON.stringify({ cniVersion: "1.0.0", name: "n", type: "flatnet", agentSocket: socket, pad: "x".repeat(2 << 20) });
  const cases: { command: string; expectStdout: (out: string) => void }[] = [
    // ADD may be half done: "try again" (11), never killed by SIGPIPE with nothing on stdout.
    { command: "ADD", expectStdout: (out) => expect(JSON.parse(out)).toMatchObject({ cniVersion: "1.0.0", code: 11 }) },
    // DEL is idempotent: done by flatnet-bun.
    { command: "DEL", expectStdout: (out) => expect(JSON.parse(out)).toEqual({ fallback: "flatnet-bun" }) },
  ];
  for (const { command, expectStdout } of cases) {
    it(`${command}: answers instead of dying of SIGPIPE`, async () => {
      const result = await run(client, { CNI_COMMAND: command, CNI_CONTAINERID: "c1", CNI_NETNS: "/x", CNI_IFNAME: "eth0", CNI_PATH: "/x" }, stdin());
      expect(result.signal).toBeNull();
      expect(result.code).toBe(command === "ADD" ? 1 : 0);
      expectStdout(result.stdout);
    });
  }
});
