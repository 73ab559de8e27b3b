// Static gates on what gets deployed: wrangler.jsonc against the repo's one CORS allowlist and the
// toolchain pins, plus the pin-ports preload the Python end-to-end tests rely on.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import { parseAllowedOrigins } from "../src/cors.js";
import { WORKER_DIR, parseJsonc, readCorsOrigins, readWranglerConfig } from "./config.mjs";

const config = readWranglerConfig();
const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
const lock = JSON.parse(readFileSync(new URL("../package-lock.json", import.meta.url), "utf8"));

describe("wrangler.jsonc", () => {
	test("vars.ALLOWED_ORIGINS holds exactly the origins of cors-origins.txt", () => {
		const fileOrigins = readCorsOrigins();
		assert.ok(fileOrigins.length > 0, "cors-origins.txt lists no origins");
		const raw = config.vars.ALLOWED_ORIGINS.split(",").map((s) => s.trim());
		assert.equal(new Set(raw).size, raw.length, "duplicate origin in ALLOWED_ORIGINS");
		assert.deepEqual([...raw].sort(), [...fileOrigins].sort());
		// …and the Worker's own parser reads it back unchanged (no entry lost to normalisation).
		assert.deepEqual(parseAllowedOrigins(config.vars.ALLOWED_ORIGINS).sort(), [...fileOrigins].sort());
	});

	test("ORIGIN_URL is declared (empty = the route's own origin, else an absolute http(s) URL)", () => {
		assert.equal(typeof config.vars.ORIGIN_URL, "string");
		if (config.vars.ORIGIN_URL) assert.match(new URL(config.vars.ORIGIN_URL).protocol, /^https?:$/);
	});

	test("entry point, no workers.dev, logs on, both placeholder routes", () => {
		assert.equal(config.main, "src/index.js");
		assert.equal(config.workers_dev, false);
		assert.equal(config.observability.logs.enabled, true);
		assert.deepEqual(config.routes.map((r) => r.pattern).sort(), ["api.example.test/*", "dev-api.example.test/*"]);
	});

	// wrangler's own validator and esbuild bundle, exactly as `wrangler deploy` would run them, minus
	// the upload. Offline: metrics, error reports and the cf.json fetch off; logs to a temp dir.
	test("`wrangler deploy --dry-run` accepts the config without warnings", () => {
		const tmp = mkdtempSync(join(tmpdir(), "wrangler-dry-run-"));
		try {
			const run = spawnSync(
				join(WORKER_DIR, "node_modules/.bin/wrangler"),
				["deploy", "--dry-run", "--outdir", join(tmp, "out")],
				{
					cwd: WORKER_DIR,
					encoding: "utf8",
					stdio: ["ignore", "pipe", "pipe"],
					timeout: 60_000,
					env: {
						...process.env,
						CI: "1",
						CLOUDFLARE_CF_FETCH_ENABLED: "false",
						WRANGLER_SEND_METRICS: "false",
						WRANGLER_SEND_ERROR_REPORTS: "false",
						XDG_CONFIG_HOME: tmp,
						WRANGLER_LOG_PATH: tmp,
					},
				},
			);
			const out = run.stdout + run.stderr;
			assert.equal(run.status, 0, out);
			assert.match(out, /--dry-run: exiting now/);
			assert.match(out, /env\.ALLOWED_ORIGINS/);
			assert.doesNotMatch(out, /WARNING|ERROR/);
		} finally {
			rmSync(tmp, { recursive: true, force: true });
		}
	});

	test("compatibility_date is pinned and no newer than the pinned workerd supports (2026-04-26)", () => {
		assert.match(config.compatibility_date, /^\d{4}-\d{2}-\d{2}$/);
		assert.ok(config.compatibility_date <= "2026-04-26", config.compatibility_date);
	});
});

describe("toolchain pins", () => {
	test("devDependencies are exact versions: the last miniflare/wrangler that run on Node 20", () => {
		assert.deepEqual(pkg.devDependencies, { miniflare: "4.20260426.0", prettier: "3.10.1", wrangler: "4.86.0" });
		assert.match(pkg.engines.node, /^\^20\./);
	});

	test("package-lock.json resolves the same versions", () => {
		for (const [name, version] of Object.entries(pkg.devDependencies)) {
			assert.equal(lock.packages[`node_modules/${name}`].version, version, name);
		}
		assert.equal(lock.packages["node_modules/wrangler"].dependencies.miniflare, pkg.devDependencies.miniflare);
	});
});

describe("formatting", () => {
	// style.md rule 45: JS via prettier with tabs (.prettierrc.json); `npm run format` fixes.
	test("prettier --check passes", () => {
		const run = spawnSync(join(WORKER_DIR, "node_modules/.bin/prettier"), ["--check", "."], {
			cwd: WORKER_DIR,
			encoding: "utf8",
		});
		assert.equal(run.status, 0, run.stdout + run.stderr);
	});
});

describe("parseJsonc", () => {
	test("comments and trailing commas outside strings are dropped, string contents kept", () => {
		const text = '{\n// c\n"a": "x // y, /* z */",/* b */ "b": [1, 2,],\n"c": "\\"//",\n}';
		assert.deepEqual(parseJsonc(text), { a: "x // y, /* z */", b: [1, 2], c: '"//' });
	});
});

describe("pin-ports.cjs", () => {
	const PRELOAD = new URL("./pin-ports.cjs", import.meta.url).pathname;
	const listenZero =
		"const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})";

	test("with PIN_PORT_BASE, listen(0) gets that port", async () => {
		const base = await freePort();
		const out = execFileSync(process.execPath, ["--require", PRELOAD, "-e", listenZero], {
			env: { ...process.env, PIN_PORT_BASE: String(base) },
		});
		assert.equal(Number(out), base);
	});

	test("without PIN_PORT_BASE it is a no-op", () => {
		const env = { ...process.env };
		delete env.PIN_PORT_BASE;
		const out = execFileSync(process.execPath, ["--require", PRELOAD, "-e", listenZero], { env });
		assert.ok(Number(out) > 0);
	});
});

function freePort() {
	return new Promise((resolve, reject) => {
		const s = createServer().listen(0, "127.0.0.1", () => {
			const { port } = s.address();
			s.close(() => resolve(port));
		});
		s.on("error", reject);
	});
}
