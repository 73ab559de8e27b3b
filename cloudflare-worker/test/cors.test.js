// Unit tests of the pure CORS functions (src/cors.js); the Worker itself is tested in real
// workerd by worker.test.mjs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
	DEFAULT_ALLOW_HEADERS,
	allowHeaders,
	appendList,
	applyCorsHeaders,
	isAllowedOrigin,
	normaliseOrigin,
	parseAllowedOrigins,
	preflightHeaders,
} from "../src/cors.js";

const ALLOWED = parseAllowedOrigins("app://obsidian.md, capacitor://localhost,http://localhost");

describe("normaliseOrigin", () => {
	for (const [input, expected] of [
		["https://Example.TEST", "https://example.test"],
		["https://example.test/", "https://example.test"],
		["  app://obsidian.md  ", "app://obsidian.md"],
		["null", ""],
		["", ""],
		[null, ""],
		[undefined, ""],
	]) {
		test(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
			assert.equal(normaliseOrigin(input), expected);
		});
	}
});

describe("parseAllowedOrigins", () => {
	test("comma list, trimmed, normalised, deduplicated in order", () => {
		assert.deepEqual(parseAllowedOrigins(" https://A.test/ ,app://obsidian.md,,https://a.test"), [
			"https://a.test",
			"app://obsidian.md",
		]);
	});

	test("accepts the allowlist file format: newlines, # comments, blank lines", () => {
		const text = "# comment\napp://obsidian.md\n\nhttp://localhost # trailing comment\r\n";
		assert.deepEqual(parseAllowedOrigins(text), ["app://obsidian.md", "http://localhost"]);
	});

	test("empty or missing value allows nothing", () => {
		assert.deepEqual(parseAllowedOrigins(""), []);
		assert.deepEqual(parseAllowedOrigins(undefined), []);
	});

	test("the opaque origin null never makes it onto the list", () => {
		assert.deepEqual(parseAllowedOrigins("null,http://localhost"), ["http://localhost"]);
	});
});

describe("isAllowedOrigin", () => {
	for (const [origin, expected] of [
		["app://obsidian.md", true],
		["APP://Obsidian.md", true],
		["capacitor://localhost/", true],
		["http://localhost", true],
		// Exact match only: no port wildcard, no scheme swap, no suffix match.
		["http://localhost:5173", false],
		["https://localhost", false],
		["app://obsidian.md.evil.test", false],
		["https://evil.test", false],
		["null", false],
		["", false],
		[null, false],
	]) {
		test(`${JSON.stringify(origin)} → ${expected}`, () => {
			assert.equal(isAllowedOrigin(origin, ALLOWED), expected);
		});
	}
});

describe("allowHeaders", () => {
	test("defaults alone when nothing is requested", () => {
		assert.equal(allowHeaders(null), DEFAULT_ALLOW_HEADERS.join(", "));
		assert.equal(DEFAULT_ALLOW_HEADERS.length, 17);
	});

	test("defaults first, then new requested headers, deduplicated case-insensitively", () => {
		const value = allowHeaders("authorization, X-Custom, x-custom, X-STAINLESS-OS,content-type , x-other");
		assert.deepEqual(value.split(", "), [...DEFAULT_ALLOW_HEADERS, "X-Custom", "x-other"]);
	});

	test("invalid header names are dropped, not reflected", () => {
		const value = allowHeaders("x-ok, bad header, x-inject\r\nSet-Cookie: a=b, ,(x)");
		assert.deepEqual(value.split(", "), [...DEFAULT_ALLOW_HEADERS, "x-ok"]);
	});
});

describe("appendList", () => {
	test("keeps existing entries and adds missing ones once", () => {
		assert.equal(appendList("Accept-Encoding", ["Origin"]), "Accept-Encoding, Origin");
		assert.equal(appendList("accept-encoding, origin", ["Origin"]), "accept-encoding, origin");
		assert.equal(appendList(null, ["Origin"]), "Origin");
	});
});

describe("preflightHeaders", () => {
	test("allowed origin: echoed verbatim with credentials, methods, max-age, Vary", () => {
		const h = preflightHeaders("app://obsidian.md", "x-stainless-timeout, X-Trace", ALLOWED);
		assert.equal(h.get("Access-Control-Allow-Origin"), "app://obsidian.md");
		assert.equal(h.get("Access-Control-Allow-Credentials"), "true");
		assert.equal(h.get("Access-Control-Allow-Methods"), "GET, POST, HEAD, OPTIONS");
		assert.equal(h.get("Access-Control-Max-Age"), "600");
		assert.equal(h.get("Access-Control-Allow-Headers"), [...DEFAULT_ALLOW_HEADERS, "X-Trace"].join(", "));
		assert.equal(h.get("Vary"), "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
	});

	test("disallowed origin: no ACAO and no credentials", () => {
		const h = preflightHeaders("https://evil.test", "x-a", ALLOWED);
		assert.equal(h.has("Access-Control-Allow-Origin"), false);
		assert.equal(h.has("Access-Control-Allow-Credentials"), false);
		assert.match(h.get("Vary"), /\bOrigin\b/);
	});

	test("no Origin header: no ACAO", () => {
		assert.equal(preflightHeaders(null, null, ALLOWED).has("Access-Control-Allow-Origin"), false);
	});
});

describe("applyCorsHeaders", () => {
	test("allowed origin overwrites the upstream's CORS headers and merges Vary / Expose", () => {
		const h = new Headers({
			"Access-Control-Allow-Origin": "*",
			Vary: "Accept-Encoding",
			"Access-Control-Expose-Headers": "X-Upstream",
		});
		applyCorsHeaders(h, "capacitor://localhost", ALLOWED);
		assert.equal(h.get("Access-Control-Allow-Origin"), "capacitor://localhost");
		assert.equal(h.get("Access-Control-Allow-Credentials"), "true");
		assert.equal(h.get("Vary"), "Accept-Encoding, Origin");
		assert.equal(h.get("Access-Control-Expose-Headers"), "X-Upstream, Content-Type, X-Request-Id");
	});

	test("disallowed origin strips upstream ACAO/ACAC but still varies on Origin", () => {
		const h = new Headers({ "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": "true" });
		applyCorsHeaders(h, "https://evil.test", ALLOWED);
		assert.equal(h.has("Access-Control-Allow-Origin"), false);
		assert.equal(h.has("Access-Control-Allow-Credentials"), false);
		assert.equal(h.get("Vary"), "Origin");
	});
});
