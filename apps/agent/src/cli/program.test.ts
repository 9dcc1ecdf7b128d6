import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { AgentContext } from "../api/context.ts";
import { agentRoutes } from "../api/routes/agent.ts";
import { type ApiServer, createApiServer } from "../api/server.ts";
import { agentPaths } from "../lab/agent-process.ts";
import { createLogger } from "../log.ts";
import { createProgram } from "./program.ts";

// The built CLI as users run it (node dist/main.js, what /usr/local/bin/flatnet and `npx flatnet` start).
const agentDir = fileURLToPath(new URL("../../", import.meta.url));
const main = join(agentDir, "dist", "main.js");
const built = existsSync(main);
if (!built) console.log(`CLI process tests skipped: ${main} is missing; build first (npx turbo run build)`);
const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
const agentVersion = (JSON.parse(readFileSync(join(agentDir, "package.json"), "utf8")) as { version: string }).version;

describe.skipIf(!built)("flatnet (built CLI): version, usage errors", () => {
  let dir: string;
  beforeAll(() => void (dir = mkdtempSync(join(tmpdir(), "fn-cl-cli-"))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("--version and -V print the client version alone, exit 0", () => {
    for (const flag of ["--version", "-V"]) expect(cli(flag)).toMatchObject({ status: 0, stdout: `${agentVersion}\n`, stderr: "" });
  });

  it("version -o json: client version, the checkout's commit, Node; no lab, no agents", () => {
    const run = cli("version", "-o", "json", "--state-dir", join(dir, "no-lab"));
    expect(run.status).toBe(0);
    const commit = execFileSync("git", ["-C", agentDir, "rev-parse", "--short=12", "HEAD"], { encoding: "utf8" }).trim();
    expect(JSON.parse(run.stdout)).toEqual({
      client: { version: agentVersion, commit, runtime: `node ${process.version}`, platform: `${process.platform}/${process.arch}` },
      lab: null,
      agents: [],
    });
    // the same document as YAML, and --json as the alias of -o json
    expect(parseYaml(cli("version", "-o", "yaml", "--state-dir", join(dir, "no-lab")).stdout)).toEqual(JSON.parse(run.stdout));
    expect(JSON.parse(cli("version", "--json", "--state-dir", join(dir, "no-lab")).stdout)).toEqual(JSON.parse(run.stdout));
  });

  it.each([
    [["check", "--frobnicate"], "error: unknown option '--frobnicate'"],
    [["lab", "up", "--nodes", "three"], `--nodes "three" must be a non-negative integer`],
    [["lab", "status", "-o", "xml"], `error: option '-o, --output <format>' argument 'xml' is invalid. Allowed choices are text, wide, json, yaml.`],
    [["check", "--json", "-o", "yaml"], "error: option '--json' cannot be used with option '-o, --output <format>'"],
    [["plan"], "error: missing required argument 'file'"],
    [["version", "--bogus"], "error: unknown option '--bogus'"],
    [["agent", "--log-format", "xml"], "error: option '--log-format <format>' argument 'xml' is invalid."],
    [["completion", "fish"], "error: command-argument value 'fish' is invalid for argument 'shell'. Allowed choices are bash, zsh."],
    [["lab", "kill-agent"], "error: missing required argument 'node'"],
    [["frobnicate"], "error: unknown command 'frobnicate'"],
  ])("usage error %j: exit 2, one error line and a hint, no stack", (args, message) => {
    const run = cli(...args);
    expect({ status: run.status, stdout: run.stdout }).toEqual({ status: 2, stdout: "" });
    expect(run.stderr).toContain(message);
    expect(run.stderr).toContain("(add --help for usage and examples)");
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("a runtime error keeps its documented code: check on a missing lab is 2 (could not check), plan on a missing file 66", () => {
    const check = cli("check", "--state-dir", join(dir, "no-lab"));
    expect(check.status).toBe(2);
    expect(check.stderr).toMatch(/^flatnet check: /);
    expect(cli("plan", join(dir, "missing.yaml")).status).toBe(66);
  });
});

const asNobody = built && process.getuid?.() === 0 && spawnSync("runuser", ["--help"]).status === 0;
describe.skipIf(!asNobody)("the lab needs root, and says so (run as nobody with runuser)", () => {
  it.each<[string[], number, string]>([
    [["lab", "up", "--state-dir", "/nonexistent/fn-cl-lab"], 1, `flatnet lab up: this command needs root (running as uid 65534): the lab's network namespaces are root's; run "sudo flatnet lab up ..." or as root\n`],
    [["lab", "status"], 1, `flatnet lab status: this command needs root (running as uid 65534): the lab's network namespaces are root's; run "sudo flatnet lab status ..." or as root\n`],
    [["check"], 2, `flatnet check: checking the lab needs root (running as uid 65534): the lab's network namespaces are root's; run "sudo flatnet check ..." or as root; a cluster is checked with --kubeconfig / --context\n`],
  ])("flatnet %j as uid 65534: exit %i, one line naming the fix", (args, status, stderr) => {
    const run = spawnSync("runuser", ["-u", "nobody", "--", process.execPath, main, ...args], { encoding: "utf8", cwd: tmpdir() });
    expect({ status: run.status, stderr: run.stderr, stdout: run.stdout }).toEqual({ status, stderr, stdout: "" });
  });
});

describe.skipIf(!built)("flatnet version: the lab's agents over their sockets (GET /v1/version)", () => {
  let dir: string;
  let api: ApiServer;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fn-cl-version-"));
    const node = (name: string, index: number) => ({ name, index, netns: `fn-cl-${name}`, segment: 0, underlayIps: [], podCidrs: [] });
    writeFileSync(join(dir, "state.json"), JSON.stringify({
      version: 1, prefix: "fn-cl-", backend: "host-gw", dualStack: false, podsPerNode: 0, createdAt: new Date().toISOString(),
      clusterCidrs: ["10.244.0.0/16"], namespaces: [], nodes: [node("node1", 1), node("node2", 2)], pods: [],
    }));
    // node1: the agent's real route module on its lab socket; node2: no agent (down).
    const context = { self: () => ({ name: "node1" }), logger: createLogger({ level: "silent" }) } as unknown as AgentContext;
    api = createApiServer({ socketPath: agentPaths(dir, "node1").socket, routes: agentRoutes(context), logger: context.logger });
    await api.listen();
  });
  afterAll(async () => {
    await api?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("lists each agent's build, and says which one is not reachable", async () => {
    const run = await promisify(execFile)(process.execPath, [main, "version", "-o", "json", "--state-dir", dir], { encoding: "utf8" });
    const report = JSON.parse(run.stdout);
    expect(report.lab).toBe(dir);
    expect(report.agents).toEqual([
      { source: "lab", node: "node1", socket: agentPaths(dir, "node1").socket, version: { ...report.client, node: "node1" } },
      { source: "lab", node: "node2", socket: agentPaths(dir, "node2").socket, error: "not reachable" },
    ]);
    const text = await promisify(execFile)(process.execPath, [main, "version", "--state-dir", dir], { encoding: "utf8" });
    expect(text.stdout).toBe(
      `client: flatnet ${agentVersion} (commit ${report.client.commit}, node ${process.version}, ${process.platform}/${process.arch})\n` +
        `lab ${dir}:\n` +
        `  node1    flatnet ${agentVersion} (commit ${report.client.commit}, node ${process.version}, ${process.platform}/${process.arch})\n` +
        `  node2    not reachable\n`,
    );
  });
});

describe("the command tree", () => {
  const walk = (command: Command, path: string[] = []): [string, Command][] =>
    command.commands.flatMap((sub) => [[[...path, sub.name()].join(" "), sub] as [string, Command], ...walk(sub, [...path, sub.name()])]);
  const helpOf = (command: Command): string => {
    let text = "";
    command.configureOutput({ writeOut: (chunk) => void (text += chunk) });
    command.outputHelp();
    return text;
  };

  it.each(walk(createProgram()).filter(([, command]) => !(command as unknown as { _hidden: boolean })._hidden))(
    "flatnet %s --help ends with examples of itself",
    (path, command) => {
      expect(helpOf(command)).toMatch(new RegExp(`\\nExamples:\\n(  .*\\n)*  (.*\\| )?(source <\\()?flatnet ${path}\\b`));
    },
  );

  it("internal commands are hidden from help: probe-responder (what lab pods run) is not listed", () => {
    const program = createProgram();
    expect(walk(program).map(([path]) => path)).toContain("probe-responder");
    expect(helpOf(program)).not.toContain("probe-responder");
    expect(program.createHelp().visibleCommands(program).map((c) => c.name())).toEqual(["version", "plan", "agent", "lab", "check", "trace", "completion", "help"]);
  });
});
