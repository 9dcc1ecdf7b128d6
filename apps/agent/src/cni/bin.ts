// The entry of the compiled CNI plugin binary (`bun build --compile`, scripts/build-cni.mjs): no CLI, no commander.
// No top-level await: --bytecode compiles to CommonJS.
import { runCniProcess } from "./main.ts";

void runCniProcess().then((code) => {
  process.exitCode = code;
});
