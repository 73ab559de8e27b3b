// Preload (`node --require ./test/pin-ports.cjs`) that pins listen(0) to known ports.
// Miniflare's internal Node "loopback" server always listens on port 0 with no option to choose
// (harness.md §2.3); with PIN_PORT_BASE set, the n-th listen(0) in this process gets
// PIN_PORT_BASE + n instead, so a harness can allocate, allow-list and check every port it opens.
// Without PIN_PORT_BASE this is a no-op and the kernel picks ports as usual.
"use strict";
const net = require("node:net");

const base = process.env.PIN_PORT_BASE;
if (base) {
	const listen = net.Server.prototype.listen;
	let next = Number(base);
	if (!Number.isInteger(next) || next <= 0 || next > 65535) {
		throw new Error(`PIN_PORT_BASE must be a TCP port, got ${JSON.stringify(base)}`);
	}
	net.Server.prototype.listen = function (...args) {
		if (args[0] === 0) args[0] = next++;
		else if (args[0] && typeof args[0] === "object" && args[0].port === 0) args[0] = { ...args[0], port: next++ };
		return listen.apply(this, args);
	};
}
