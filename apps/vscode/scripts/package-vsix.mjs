// Copies the webview assets next to the bundle and packs dist/flatnet-vscode.vsix with @vscode/vsce from a
// staging folder holding only what ships (bundles, assets, manifest): no node_modules, no sources.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createVSIX } from "@vscode/vsce";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const codicons = dirname(require.resolve("@vscode/codicons/dist/codicon.css"));
const webview = join(root, "dist", "webview");
mkdirSync(webview, { recursive: true });
cpSync(join(root, "src", "webview", "style.css"), join(webview, "style.css"));
cpSync(join(codicons, "codicon.css"), join(webview, "codicon.css"));
cpSync(join(codicons, "codicon.ttf"), join(webview, "codicon.ttf"));

const stage = join(root, "dist", "stage");
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, "dist"), { recursive: true });
cpSync(join(root, "dist", "extension.cjs"), join(stage, "dist", "extension.cjs"));
cpSync(webview, join(stage, "dist", "webview"), { recursive: true, filter: (path) => !path.endsWith(".map") });
cpSync(join(root, "media"), join(stage, "media"), { recursive: true });
cpSync(join(root, "README.md"), join(stage, "README.md"));
cpSync(join(root, "CHANGELOG.md"), join(stage, "CHANGELOG.md"));
cpSync(join(root, "LICENSE.txt"), join(stage, "LICENSE.txt"));

// The marketplace name cannot be scoped; the npm workspace name (@flatnet/vscode) stays as it is.
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const { dependencies, devDependencies, scripts, type, private: _private, ...shipped } = manifest;
writeFileSync(join(stage, "package.json"), JSON.stringify({ ...shipped, name: "flatnet-vscode" }, null, 2));
writeFileSync(join(stage, ".vscodeignore"), "**/*.map\n");

const packagePath = join(root, "dist", "flatnet-vscode.vsix");
await createVSIX({ cwd: stage, packagePath, dependencies: false, allowStarActivation: false });
rmSync(stage, { recursive: true, force: true });
console.log(`packed ${packagePath}`);
