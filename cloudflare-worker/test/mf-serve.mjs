// Long-running Miniflare (real workerd) serving the Worker for non-JS harnesses (the Python tests).
// Prints `READY <url>` on stdout once requests are accepted. On SIGTERM/SIGINT Miniflare's own exit
// hook kills workerd synchronously and exits 128+signal (143/130) within ~20 ms; a handler of ours
// could not run first, so there is none (tests/worker checks that no node/workerd survives).
//
// Env: MF_PORT (listen port, default: any), ORIGIN_URL (required), ALLOWED_ORIGINS (default: the
// value in wrangler.jsonc), PIN_PORT_BASE with `--require ./test/pin-ports.cjs` to pin Miniflare's
// internal loopback port. compatibility_date and the rest come from wrangler.jsonc.
// Run with CLOUDFLARE_CF_FETCH_ENABLED=false; `cf: false` below also stops the cf.json fetch.
import { Miniflare } from "miniflare";
import { MODULES_RULES, SCRIPT_PATH, readWranglerConfig } from "./config.mjs";

const config = readWranglerConfig();
if (!process.env.ORIGIN_URL) {
	console.error("mf-serve: ORIGIN_URL is required (e.g. http://127.0.0.1:8080)");
	process.exit(2);
}

const mf = new Miniflare({
	modules: true,
	modulesRules: MODULES_RULES,
	scriptPath: SCRIPT_PATH,
	compatibilityDate: config.compatibility_date,
	compatibilityFlags: config.compatibility_flags ?? [],
	cf: false,
	host: "127.0.0.1",
	port: Number(process.env.MF_PORT ?? 0),
	bindings: {
		...config.vars,
		ALLOWED_ORIGINS: process.env.ALLOWED_ORIGINS ?? config.vars.ALLOWED_ORIGINS,
		ORIGIN_URL: process.env.ORIGIN_URL,
	},
});

console.log(`READY ${await mf.ready}`);
