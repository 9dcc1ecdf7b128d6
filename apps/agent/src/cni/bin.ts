// The entry of the compiled CNI plugin binary (`bun build --compile`, scripts/build-cni.mjs): no CLI, no commander.
// No top-level await: --bytecode compiles to CommonJS. The result is written synchronously, then the process exits at
// once instead of waiting for the event loop to wind down (a plugin is a process per call: every millisecond counts).
import { runCniProcess } from "./main.ts";

void runCniProcess().then((code) => process.exit(code));
