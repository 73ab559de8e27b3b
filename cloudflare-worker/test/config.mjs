// Test-side readers for the Worker's deployed configuration and the repo's CORS allowlist, so the
// tests and mf-serve.mjs run the Worker with exactly what `wrangler deploy` would ship.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const WORKER_DIR = fileURLToPath(new URL("..", import.meta.url));
export const WRANGLER_CONFIG = fileURLToPath(new URL("../wrangler.jsonc", import.meta.url));
export const CORS_ORIGINS_FILE = fileURLToPath(new URL("../../cors-origins.txt", import.meta.url));
export const SCRIPT_PATH = fileURLToPath(new URL("../src/index.js", import.meta.url));
// src/ is ES modules throughout, as wrangler bundles it; Miniflare treats only the entry as one by default.
export const MODULES_RULES = [{ type: "ESModule", include: ["**/*.js"] }];

/**
 * Enough JSONC for wrangler.jsonc: // and /* *\/ comments and trailing commas, both only outside
 * strings. (wrangler's own reader would do, but importing wrangler costs seconds per process.)
 */
export function parseJsonc(text) {
	const withoutComments = scan(text, (c, rest) => {
		if (c === "/" && rest[1] === "/") {
			const newline = rest.indexOf("\n");
			return { skip: newline < 0 ? rest.length : newline };
		}
		if (c === "/" && rest[1] === "*") {
			const end = rest.indexOf("*/");
			if (end < 0) throw new SyntaxError("unterminated block comment");
			return { skip: end + 2, emit: " " };
		}
		return null;
	});
	const withoutTrailingCommas = scan(withoutComments, (c, rest) =>
		c === "," && /^,\s*[}\]]/.test(rest) ? { skip: 1 } : null,
	);
	return JSON.parse(withoutTrailingCommas);
}

// Copy `text`, letting `outside(char, restOfText)` drop or replace spans that start outside strings.
function scan(text, outside) {
	let out = "";
	let i = 0;
	while (i < text.length) {
		const c = text[i];
		if (c === '"') {
			let j = i + 1;
			while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
			out += text.slice(i, j + 1);
			i = j + 1;
			continue;
		}
		const action = outside(c, text.slice(i));
		if (action) {
			out += action.emit ?? "";
			i += action.skip;
		} else {
			out += c;
			i += 1;
		}
	}
	return out;
}

export function readWranglerConfig(path = WRANGLER_CONFIG) {
	return parseJsonc(readFileSync(path, "utf8"));
}

/** The allowlist file: one origin per line, `#` starts a comment, blank lines ignored. */
export function readCorsOrigins(path = CORS_ORIGINS_FILE) {
	return readFileSync(path, "utf8")
		.split(/\r?\n/)
		.map((line) => line.replace(/#.*$/, "").trim())
		.filter(Boolean);
}
