import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { isRecordedProcessAlive, processStartTime, stopRecordedProcess } from "./supervisor.ts";

const startSleeper = async (): Promise<{ pid: number; startTime: string; exited: Promise<unknown> }> => {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const pid = child.pid ?? 0;
  const startTime = await processStartTime(pid);
  if (startTime === undefined) throw new Error("sleep did not start");
  return { pid, startTime, exited };
};

describe("process supervision", () => {
  it("reads a live process's start time and none for a missing one", async () => {
    expect(await processStartTime(process.pid)).toMatch(/^[0-9]+$/);
    expect(await processStartTime(2 ** 22 + 1)).toBeUndefined();
  });

  it("never signals a PID whose start time differs from the record (a reused PID)", async () => {
    const sleeper = await startSleeper();
    try {
      const impostor = { pid: sleeper.pid, startTime: String(Number(sleeper.startTime) - 1) };
      expect(await isRecordedProcessAlive(impostor)).toBe(false);
      expect(await stopRecordedProcess(impostor, "SIGKILL")).toBe(false);
      expect(await isRecordedProcessAlive(sleeper)).toBe(true);
    } finally {
      process.kill(sleeper.pid, "SIGKILL");
      await sleeper.exited;
    }
  });

  it.each(["SIGTERM", "SIGKILL"] as const)("stops the recorded process with %s and waits until it is gone", async (signal) => {
    const sleeper = await startSleeper();
    expect(await stopRecordedProcess(sleeper, signal)).toBe(true);
    expect(await isRecordedProcessAlive(sleeper)).toBe(false);
    expect(await stopRecordedProcess(sleeper, signal)).toBe(false);
    await sleeper.exited;
  });
});
