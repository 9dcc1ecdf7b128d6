import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type CniWorker, startCniWorker } from "./worker.ts";

// The worker supervisor with a stand-in binary (a shell script): restarts must survive a binary that cannot be started
// for a moment (a rebuild empties dist/, an upgrade replaces the file), which Node reports as "error" without "exit".

async function until(what: string, condition: () => boolean, limitMs = 4_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("startCniWorker", () => {
  let dir = "";
  let worker: CniWorker | undefined;
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  const cases: { name: string; spoil: (binary: string) => string }[] = [
    // The first run makes the binary unstartable, so the restart's spawn fails (EACCES / ENOENT).
    { name: "not executable (EACCES)", spoil: (binary) => `chmod 644 "${binary}"` },
    { name: "missing (ENOENT)", spoil: (binary) => `mv "${binary}" "${binary}.aside"` },
  ];
  for (const { name, spoil } of cases) {
    it(`restarts again after a restart whose binary was ${name}`, async () => {
      dir = mkdtempSync(join(tmpdir(), "fn-tz-worker-"));
      const binary = join(dir, "flatnet");
      writeFileSync(binary, `#!/bin/sh\n${spoil(binary)}\nexit 1\n`);
      chmodSync(binary, 0o755);
      const warnings: string[] = [];
      const logger = { info: () => {}, warn: (_fields: object, message: string) => void warnings.push(message) };
      worker = startCniWorker({ apiSocket: join(dir, "agent.sock"), binary, logger, restartDelayMs: 5 });
      expect(worker).toBeDefined();
      await until("the failed restart", () => warnings.includes("CNI worker failed to start"));
      // The binary is back (and now stays up): the supervisor must start it.
      writeFileSync(binary, "#!/bin/sh\nexec sleep 60\n");
      chmodSync(binary, 0o755);
      await until("a running worker after the failed restart", () => worker?.pid() !== undefined);
      const pid = worker!.pid()!;
      expect(() => process.kill(pid, 0)).not.toThrow();
    });
  }
});
