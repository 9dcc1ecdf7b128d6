// Imported first by the webview entry: zod's JIT probes `new Function` when schemas are built, which the
// CSP (no 'unsafe-eval') rightly refuses and reports. Parse without the JIT instead.
import { config } from "zod";

config({ jitless: true });
