// Edge Worker in front of Traefik (client → Cloudflare → this Worker → Traefik → authd / app).
// OPTIONS is answered here and never forwarded (style.md rule 25); everything else is streamed to
// the origin unbuffered, with the CORS headers overwritten from the one allowlist.
import { applyCorsHeaders, parseAllowedOrigins, preflightHeaders } from "./cors.js";

// Parsing the var once per isolate; keyed on the raw string so a changed binding is re-read.
let cachedRaw;
let cachedAllowed = [];
function allowedOrigins(env) {
	const raw = env.ALLOWED_ORIGINS ?? "";
	if (raw !== cachedRaw) {
		cachedRaw = raw;
		cachedAllowed = parseAllowedOrigins(raw);
	}
	return cachedAllowed;
}

/**
 * Where a request goes: with ORIGIN_URL set, its scheme/host/port (and path prefix) replace the
 * request's; with ORIGIN_URL empty, the request's own URL, which on a Cloudflare route means the
 * zone's origin server (a Worker's subrequest to its own route host bypasses the Worker).
 */
function upstreamUrl(requestUrl, originUrl) {
	if (!originUrl) return requestUrl;
	const source = new URL(requestUrl);
	const target = new URL(originUrl);
	target.pathname = target.pathname.replace(/\/+$/, "") + source.pathname;
	target.search = source.search;
	return target.toString();
}

// One JSON line per request for Workers Logs. Never the Authorization header or the body.
function logRequest(request, fields) {
	const url = new URL(request.url);
	console.log(
		JSON.stringify({
			ts: new Date().toISOString(),
			host: url.host,
			path: url.pathname,
			method: request.method,
			origin: request.headers.get("Origin"),
			acrMethod: request.headers.get("Access-Control-Request-Method"),
			acrHeaders: request.headers.get("Access-Control-Request-Headers"),
			ua: request.headers.get("User-Agent"),
			ray: request.headers.get("Cf-Ray"),
			...fields,
		}),
	);
}

export default {
	async fetch(request, env) {
		const allowed = allowedOrigins(env);
		const origin = request.headers.get("Origin");

		if (request.method === "OPTIONS") {
			const headers = preflightHeaders(origin, request.headers.get("Access-Control-Request-Headers"), allowed);
			logRequest(request, { status: 204, edge: true, allowed: headers.has("Access-Control-Allow-Origin") });
			return new Response(null, { status: 204, headers });
		}

		let upstream;
		try {
			// redirect: "manual" so the client, not the edge, sees and follows the origin's redirects.
			upstream = await fetch(new Request(upstreamUrl(request.url, env.ORIGIN_URL), request), { redirect: "manual" });
		} catch (err) {
			logRequest(request, { status: 502, error: String(err?.message ?? err) });
			const body = JSON.stringify({
				error: { message: "origin unreachable", type: "backend_unavailable", code: "origin_unreachable" },
			});
			const headers = new Headers({ "Content-Type": "application/json" });
			return new Response(body, { status: 502, headers: applyCorsHeaders(headers, origin, allowed) });
		}

		// Stream through: the body is the upstream ReadableStream, never read here (SSE must not buffer).
		const response = new Response(upstream.body, upstream);
		applyCorsHeaders(response.headers, origin, allowed);
		logRequest(request, { status: upstream.status });
		return response;
	},
};
