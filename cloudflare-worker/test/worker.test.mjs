// The Worker in real workerd (Miniflare in-process) in front of a local Node origin that counts
// its hits. Configuration comes from wrangler.jsonc, so this is what `wrangler deploy` ships.
// No network: `cf: false` and CLOUDFLARE_CF_FETCH_ENABLED=false (set below before Miniflare loads).
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";
import { Miniflare } from "miniflare";
import { DEFAULT_ALLOW_HEADERS } from "../src/cors.js";
import { MODULES_RULES, SCRIPT_PATH, readCorsOrigins, readWranglerConfig } from "./config.mjs";

const config = readWranglerConfig();
const ALLOWED = "app://obsidian.md";
const DENIED = "https://evil.example.test";
const SSE_EVENTS = 5;

// ---- the origin -------------------------------------------------------------------------------

const hits = [];
// SSE lockstep: the origin writes event i, then waits until the test has *received* event i before
// writing i+1. A buffering proxy deadlocks here (and the test times out) instead of passing on luck.
const received = [];
const resetSse = () => {
	received.length = 0;
	for (let i = 0; i < SSE_EVENTS; i++) {
		let resolve;
		const promise = new Promise((r) => {
			resolve = r;
		});
		received.push({ promise, resolve });
	}
};

const origin = createServer(async (req, res) => {
	const chunks = [];
	for await (const chunk of req) chunks.push(chunk);
	const url = new URL(req.url, "http://origin");
	hits.push({ method: req.method, path: url.pathname });

	if (url.pathname === "/v1/echo") {
		res.writeHead(201, {
			"Content-Type": "application/json",
			Vary: "Accept-Encoding",
			"Access-Control-Allow-Origin": "*",
			"X-Origin": "1",
		});
		res.end(
			JSON.stringify({
				method: req.method,
				path: url.pathname,
				query: url.search,
				auth: req.headers.authorization ?? null,
				body: Buffer.concat(chunks).toString(),
			}),
		);
	} else if (url.pathname === "/v1/sse") {
		res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
		for (let i = 0; i < SSE_EVENTS; i++) {
			res.write(`data: {"n":${i}}\n\n`);
			await received[i].promise;
		}
		res.end("data: [DONE]\n\n");
	} else if (url.pathname === "/v1/redirect") {
		res.writeHead(302, { Location: "/v1/echo" });
		res.end();
	} else if (url.pathname === "/v1/drop") {
		req.socket.destroy();
	} else {
		res.writeHead(404, { "Content-Type": "application/json" });
		res.end('{"error":{"message":"not found"}}');
	}
});

// ---- the Worker -------------------------------------------------------------------------------

let mf;
const logs = [];

before(async () => {
	origin.listen(0, "127.0.0.1");
	await once(origin, "listening");
	mf = new Miniflare({
		modules: true,
		modulesRules: MODULES_RULES,
		scriptPath: SCRIPT_PATH,
		compatibilityDate: config.compatibility_date,
		cf: false,
		host: "127.0.0.1",
		bindings: { ...config.vars, ORIGIN_URL: `http://127.0.0.1:${origin.address().port}` },
		// Capture the Worker's console output (its one-JSON-line-per-request log).
		handleRuntimeStdio(stdout, stderr) {
			stdout.setEncoding("utf8").on("data", (s) => logs.push(...s.split("\n").filter(Boolean)));
			stderr.resume();
		},
	});
	await mf.ready;
});

after(async () => {
	await mf?.dispose();
	origin.closeAllConnections();
	origin.close();
});

const preflight = (originHeader, requestHeaders, path = "/v1/chat/completions") =>
	mf.dispatchFetch(`https://api.example.test${path}`, {
		method: "OPTIONS",
		headers: {
			...(originHeader ? { Origin: originHeader } : {}),
			"Access-Control-Request-Method": "POST",
			...(requestHeaders ? { "Access-Control-Request-Headers": requestHeaders } : {}),
		},
	});

// ---- preflight ---------------------------------------------------------------------------------

describe("preflight (OPTIONS) is answered at the edge", () => {
	test("allowed origin → 204, origin echoed, credentials, defaults ∪ requested headers, max-age, Vary", async () => {
		const res = await preflight(ALLOWED, "authorization, X-Custom-Trace, x-custom-trace, x-stainless-os");
		assert.equal(res.status, 204);
		assert.equal(await res.text(), "");
		assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
		assert.equal(res.headers.get("access-control-allow-credentials"), "true");
		assert.equal(res.headers.get("access-control-allow-methods"), "GET, POST, HEAD, OPTIONS");
		assert.deepEqual(res.headers.get("access-control-allow-headers").split(", "), [
			...DEFAULT_ALLOW_HEADERS,
			"X-Custom-Trace",
		]);
		assert.equal(res.headers.get("access-control-max-age"), "600");
		const vary = res.headers.get("vary").split(/\s*,\s*/);
		for (const v of ["Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method"]) {
			assert.ok(vary.includes(v), `Vary lacks ${v}: ${res.headers.get("vary")}`);
		}
	});

	test("every origin in cors-origins.txt is allowed", async () => {
		for (const allowed of readCorsOrigins()) {
			const res = await preflight(allowed);
			assert.equal(res.status, 204);
			assert.equal(res.headers.get("access-control-allow-origin"), allowed, allowed);
			await res.arrayBuffer();
		}
	});

	for (const [name, originHeader] of [
		["disallowed origin", DENIED],
		["allowed host on another port", "http://localhost:5173"],
		["opaque origin null", "null"],
		["no Origin header", null],
	]) {
		test(`${name} → 204 without Access-Control-Allow-Origin or credentials`, async () => {
			const res = await preflight(originHeader, "authorization");
			assert.equal(res.status, 204);
			assert.equal(res.headers.get("access-control-allow-origin"), null);
			assert.equal(res.headers.get("access-control-allow-credentials"), null);
			await res.arrayBuffer();
		});
	}

	test("never reaches the origin, on any path", async () => {
		const before = hits.length;
		for (const path of ["/v1/chat/completions", "/v1/echo", "/v1/sse", "/anything"]) {
			for (const o of [ALLOWED, DENIED, null]) {
				const res = await preflight(o, "authorization", path);
				assert.equal(res.status, 204);
				await res.arrayBuffer();
			}
		}
		assert.equal(hits.length, before, `origin saw ${JSON.stringify(hits.slice(before))}`);
	});
});

// ---- proxying ----------------------------------------------------------------------------------

describe("other methods are proxied to the origin", () => {
	test("POST: status, body, method, path, query and Authorization preserved; CORS overwritten", async () => {
		const before = hits.length;
		const res = await mf.dispatchFetch("https://api.example.test/v1/echo?x=1", {
			method: "POST",
			headers: { Origin: ALLOWED, Authorization: "Bearer sk-test", "Content-Type": "application/json" },
			body: '{"hello":"world"}',
		});
		assert.equal(res.status, 201);
		assert.deepEqual(await res.json(), {
			method: "POST",
			path: "/v1/echo",
			query: "?x=1",
			auth: "Bearer sk-test",
			body: '{"hello":"world"}',
		});
		assert.equal(hits.length, before + 1);
		assert.equal(res.headers.get("x-origin"), "1");
		assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
		assert.equal(res.headers.get("access-control-allow-credentials"), "true");
		assert.deepEqual(res.headers.get("vary").split(/\s*,\s*/), ["Accept-Encoding", "Origin"]);
	});

	test("disallowed origin: the origin's own ACAO is stripped", async () => {
		const res = await mf.dispatchFetch("https://api.example.test/v1/echo", { headers: { Origin: DENIED } });
		assert.equal(res.status, 201);
		assert.equal(res.headers.get("access-control-allow-origin"), null);
		assert.equal(res.headers.get("access-control-allow-credentials"), null);
		assert.match(res.headers.get("vary"), /\bOrigin\b/);
		await res.arrayBuffer();
	});

	test("error statuses pass through unchanged", async () => {
		const res = await mf.dispatchFetch("https://api.example.test/nope", { headers: { Origin: ALLOWED } });
		assert.equal(res.status, 404);
		assert.deepEqual(await res.json(), { error: { message: "not found" } });
		assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
	});

	test("redirects go back to the client, not followed at the edge", async () => {
		const res = await mf.dispatchFetch("https://api.example.test/v1/redirect", { redirect: "manual" });
		assert.equal(res.status, 302);
		assert.equal(res.headers.get("location"), "/v1/echo");
		await res.arrayBuffer();
	});

	test("origin failure → 502 JSON error envelope with CORS headers", async () => {
		const res = await mf.dispatchFetch("https://api.example.test/v1/drop", { headers: { Origin: ALLOWED } });
		assert.equal(res.status, 502);
		assert.equal((await res.json()).error.code, "origin_unreachable");
		assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);
	});

	// A buffering Worker deadlocks the lockstep origin; the timeout turns that into a failure.
	test(
		"SSE streams through unbuffered: each event arrives before the origin writes the next",
		{ timeout: 15_000 },
		async () => {
			resetSse();
			const res = await mf.dispatchFetch("https://api.example.test/v1/sse", {
				method: "POST",
				headers: { Origin: ALLOWED, Accept: "text/event-stream" },
			});
			assert.equal(res.status, 200);
			assert.match(res.headers.get("content-type"), /^text\/event-stream/);
			assert.equal(res.headers.get("access-control-allow-origin"), ALLOWED);

			const decoder = new TextDecoder();
			let text = "";
			const arrivals = [];
			for await (const chunk of res.body) {
				text += decoder.decode(chunk, { stream: true });
				// Release the origin for the next event only once this one is here.
				const count = text.split("\n\n").length - 1;
				while (arrivals.length < Math.min(count, SSE_EVENTS)) {
					arrivals.push(performance.now());
					received[arrivals.length - 1].resolve();
				}
			}
			const events = text.split("\n\n").filter(Boolean);
			assert.deepEqual(events, [...Array.from({ length: SSE_EVENTS }, (_, n) => `data: {"n":${n}}`), "data: [DONE]"]);
			assert.equal(arrivals.length, SSE_EVENTS);
		},
	);
});

describe("logging", () => {
	test("one JSON line per request, never the Authorization header", async () => {
		const res = await mf.dispatchFetch("https://api.example.test/v1/echo", {
			headers: { Origin: ALLOWED, Authorization: "Bearer sk-secret-log-test", "User-Agent": "log-test/1" },
		});
		await res.arrayBuffer();
		const line = await waitFor(() => logs.find((l) => l.includes('"ua":"log-test/1"')));
		const entry = JSON.parse(line);
		assert.equal(entry.method, "GET");
		assert.equal(entry.path, "/v1/echo");
		assert.equal(entry.status, 201);
		assert.equal(entry.origin, ALLOWED);
		assert.ok(!logs.some((l) => l.includes("sk-secret-log-test")), "a log line contains the bearer token");
	});
});

// Poll `fn` until it returns something truthy (the runtime's stdout is piped asynchronously).
async function waitFor(fn, timeoutMs = 5000) {
	const deadline = performance.now() + timeoutMs;
	while (performance.now() < deadline) {
		const value = fn();
		if (value) return value;
		await new Promise((r) => setTimeout(r, 10));
	}
	assert.fail("timed out waiting for condition");
}
