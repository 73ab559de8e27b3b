// Pure CORS functions for the edge Worker (style.md rule 24): no I/O, no globals beyond Headers.
// The allowlist itself lives in ../../cors-origins.txt and reaches the Worker as vars.ALLOWED_ORIGINS
// (test/config.test.mjs keeps the two identical).

export const ALLOW_METHODS = "GET, POST, HEAD, OPTIONS";
export const MAX_AGE = "600";
export const EXPOSE_HEADERS = ["Content-Type", "X-Request-Id"];
export const PREFLIGHT_VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

// The headers OpenAI SDKs (incl. the browser build used by Obsidian Copilot) send; same list as the
// Traefik cors middleware (parity.md §13.2). Requested headers are added on top of these.
export const DEFAULT_ALLOW_HEADERS = Object.freeze([
	"Authorization",
	"Content-Type",
	"Accept",
	"OpenAI-Organization",
	"OpenAI-Beta",
	"OpenAI-Version",
	"OpenAI-Project",
	"X-Requested-With",
	"X-Stainless-OS",
	"X-Stainless-Lang",
	"X-Stainless-Arch",
	"X-Stainless-Runtime",
	"X-Stainless-Runtime-Version",
	"X-Stainless-Package-Version",
	"X-Stainless-Timeout",
	"X-Stainless-Retry-Count",
	"dangerously-allow-browser",
]);

// RFC 9110 field-name token; anything else in Access-Control-Request-Headers is dropped rather
// than reflected (a reflected CR/LF or comma-smuggled value must never reach a response header).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Canonical form of one origin for comparison: trimmed, lower-cased, without trailing slashes.
 * Browsers serialise origins without a path and without default ports, so exact comparison of
 * this form is the whole match (no wildcards, no "any port": list every origin explicitly).
 * Returns "" for values that can never be allowed (empty, the opaque origin "null").
 */
export function normaliseOrigin(origin) {
	const value = String(origin ?? "")
		.trim()
		.toLowerCase()
		.replace(/\/+$/, "");
	return value === "null" ? "" : value;
}

/**
 * Parse the ALLOWED_ORIGINS var: origins separated by commas and/or newlines; blank entries and
 * `#` comments ignored (so the allowlist file's format is accepted verbatim too). Order kept,
 * duplicates removed.
 */
export function parseAllowedOrigins(value) {
	const out = [];
	for (const line of String(value ?? "").split(/\r?\n/)) {
		const content = line.replace(/#.*$/, "");
		for (const item of content.split(",")) {
			const origin = normaliseOrigin(item);
			if (origin && !out.includes(origin)) out.push(origin);
		}
	}
	return out;
}

/** True when `origin` (the request's Origin header) is on the parsed allowlist. */
export function isAllowedOrigin(origin, allowed) {
	const value = normaliseOrigin(origin);
	return value !== "" && allowed.includes(value);
}

/**
 * Access-Control-Allow-Headers value: the defaults first, then each requested header not already
 * present (case-insensitive), in request order with the client's spelling. Invalid names dropped.
 */
export function allowHeaders(requested) {
	const out = [...DEFAULT_ALLOW_HEADERS];
	const seen = new Set(out.map((h) => h.toLowerCase()));
	for (const item of String(requested ?? "").split(",")) {
		const name = item.trim();
		if (!TOKEN.test(name) || seen.has(name.toLowerCase())) continue;
		seen.add(name.toLowerCase());
		out.push(name);
	}
	return out.join(", ");
}

/** Add `tokens` to a comma-separated header value, keeping existing entries and skipping duplicates. */
export function appendList(existing, tokens) {
	const out = String(existing ?? "")
		.split(",")
		.map((s) => s.trim())
		.filter(Boolean);
	const seen = new Set(out.map((s) => s.toLowerCase()));
	for (const token of tokens) {
		if (seen.has(token.toLowerCase())) continue;
		seen.add(token.toLowerCase());
		out.push(token);
	}
	return out.join(", ");
}

/**
 * Headers for the edge's answer to an OPTIONS request. The origin is echoed (with credentials)
 * only when allowed; a disallowed origin gets no Access-Control-Allow-Origin, so the browser
 * fails the preflight. Vary is always set because the answer depends on these request headers.
 */
export function preflightHeaders(origin, requestedHeaders, allowed) {
	const headers = new Headers({
		"Access-Control-Allow-Methods": ALLOW_METHODS,
		"Access-Control-Allow-Headers": allowHeaders(requestedHeaders),
		"Access-Control-Max-Age": MAX_AGE,
		"Access-Control-Expose-Headers": EXPOSE_HEADERS.join(", "),
		Vary: PREFLIGHT_VARY,
		"X-CORS-Worker": "1",
	});
	if (isAllowedOrigin(origin, allowed)) {
		headers.set("Access-Control-Allow-Origin", origin.trim());
		headers.set("Access-Control-Allow-Credentials", "true");
	}
	return headers;
}

/**
 * Overwrite the CORS headers of a proxied response in place (the edge is authoritative): echo an
 * allowed origin with credentials; strip any ACAO/ACAC the origin sent for a disallowed or absent
 * Origin. `Vary: Origin` is added either way, since whether ACAO appears depends on the Origin
 * (a shared cache must not serve one origin's answer to another). Existing Vary and
 * Expose-Headers entries are kept.
 */
export function applyCorsHeaders(headers, origin, allowed) {
	headers.set("X-CORS-Worker", "1");
	headers.set("Vary", appendList(headers.get("Vary"), ["Origin"]));
	if (!isAllowedOrigin(origin, allowed)) {
		headers.delete("Access-Control-Allow-Origin");
		headers.delete("Access-Control-Allow-Credentials");
		return headers;
	}
	headers.set("Access-Control-Allow-Origin", origin.trim());
	headers.set("Access-Control-Allow-Credentials", "true");
	headers.set(
		"Access-Control-Expose-Headers",
		appendList(headers.get("Access-Control-Expose-Headers"), EXPOSE_HEADERS),
	);
	return headers;
}
