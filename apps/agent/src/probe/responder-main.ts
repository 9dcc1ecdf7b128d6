// Entry of dist/probe-responder.js: a responder without the rest of the CLI, so 60 pods start in a blink
// (dist/main.js loads every command's dependencies: ~0.6 s of CPU per process).
import { runResponder } from "./responder-cli.ts";

await runResponder(process.argv.slice(2));
