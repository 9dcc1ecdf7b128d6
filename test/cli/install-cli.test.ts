import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// `flatnet` where users look after the README's setup: bootstrap's wrapper on PATH, and `npx flatnet` in the clone.
// The wrapper goes to a temp dir (FLATNET_BIN_DIR), never the machine's /usr/local/bin.

const root = fileURLToPath(new URL("../../", import.meta.url));
const main = join(root, "apps/agent/dist/main.js");
const built = existsSync(main);
if (!built) console.log(`install-cli tests skipped: ${main} is missing; build first`);
const version = (JSON.parse(readFileSync(join(root, "apps/agent/package.json"), "utf8")) as { version: string }).version;
const repoNode = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { devDependencies: { node: string } }).devDependencies.node;
// A PATH without the clone's Node 24 (the machine's Node, if any, is older): the wrapper must not depend on PATH.
const systemPath = "/usr/sbin:/usr/bin:/sbin:/bin";

describe.skipIf(!built)("scripts/install-cli.sh (bootstrap's PATH step)", () => {
  let dir: string;
  let bin: string;
  let completion: string;
  const install = () =>
    spawnSync("bash", [join(root, "scripts/install-cli.sh")], { encoding: "utf8", env: { PATH: systemPath, FLATNET_BIN_DIR: bin, FLATNET_COMPLETION_DIR: completion } });

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "fn-cl-install-"));
    bin = join(dir, "bin");
    completion = join(dir, "bash_completion.d");
    mkdirSync(completion);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("installs a wrapper that runs --version, version -o json and completion bash with only the system PATH", () => {
    const run = install();
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(`install-cli: flatnet -> ${bin}/flatnet (${version})`);
    const flatnet = (...args: string[]) => spawnSync(join(bin, "flatnet"), args, { encoding: "utf8", env: { PATH: systemPath }, cwd: dir });
    expect(flatnet("--version")).toMatchObject({ status: 0, stdout: `${version}\n` });
    const report = flatnet("version", "-o", "json", "--state-dir", join(dir, "no-lab"));
    expect(report.status).toBe(0);
    expect(JSON.parse(report.stdout).client).toMatchObject({ version, runtime: `node v${repoNode}` });
    const script = flatnet("completion", "bash");
    expect(script.status).toBe(0);
    expect(script.stdout).toContain("complete -o default -F _flatnet flatnet\n");
    expect(readFileSync(join(completion, "flatnet"), "utf8")).toBe(script.stdout);
    expect(flatnet("lab", "up", "--frobnicate").status).toBe(2);
  });

  it("is idempotent, and leaves a flatnet it did not install alone", () => {
    expect(install().status).toBe(0);
    writeFileSync(join(bin, "flatnet"), "#!/bin/sh\necho someone else's\n");
    const run = install();
    expect(run.status).toBe(0);
    expect(run.stderr).toContain(`${bin}/flatnet exists and is not ours; left alone`);
    expect(readFileSync(join(bin, "flatnet"), "utf8")).toBe("#!/bin/sh\necho someone else's\n");
  });

  it("npx flatnet works in the clone (the root package's bin)", () => {
    const out = execFileSync("npx", ["--offline", "flatnet", "--version"], {
      cwd: root,
      encoding: "utf8",
      env: { PATH: `${join(root, "node_modules/.bin")}:${systemPath}`, HOME: dir, npm_config_update_notifier: "false" },
    });
    expect(out).toBe(`${version}\n`);
  });
});
