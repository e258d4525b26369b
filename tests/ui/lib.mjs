// Shared helpers of the dashboard's browser tests: the browser, the
// ok/FAIL lines, the kilnd API from node and screenshots.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';

export const BASE = process.env.KILN_URL;
export const REPO = process.env.KILN_REPO;
export const OUT = process.env.KILN_UI_OUT;
if (!BASE || !REPO || !OUT) {
	console.error('FAIL: KILN_URL, KILN_REPO and KILN_UI_OUT must be set (tests/ui/run.sh sets them)');
	process.exit(1);
}
mkdirSync(OUT, { recursive: true });

let nfail = 0, nok = 0;
export function ok(what) { nok++; console.log(`ok - ${what}`); }
export function fail(what) { nfail++; console.log(`FAIL: ${what}`); }
export function check(cond, what, why) {
	if (cond)
		ok(what);
	else
		fail(`${what}${why ? ': ' + why : ''}`);
	return cond;
}
export function failures() { return nfail; }
export function summary() {
	console.log(`# ${nok} checks passed, ${nfail} failed`);
	return nfail === 0 ? 0 : 1;
}

// A flow that throws (a selector never showed up, a time-out) fails with
// what it was doing and the flows after it still run.
// The pages open then are shot into out/fail-*.png, to see what it showed.
let contexts = [];
export function watch(ctx) { contexts.push(ctx); }
export async function flow(name, fn) {
	try {
		await fn();
	} catch (e) {
		fail(`${name}: ${String(e && e.message || e).split('\n')[0]}`);
		let n = 0;
		for (const ctx of contexts)
			for (const p of ctx.pages())
				await p.screenshot({ path: `${OUT}/fail-${name.replace(/\W+/g, '-')}-${n++}.png` })
					.catch(() => {});
	}
}

// The system's chromium: playwright-core never downloads a browser here.
// --no-sandbox: chromium's own sandbox needs user namespaces or a setuid
// helper, and refuses to start as root without this flag; the tests run
// as root in CI (a fresh Debian container), and the pages loaded are
// kilnd's own.
export async function launch() {
	return chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: ['--no-sandbox'],
	});
}

// The time-out of one wait (KILN_UI_WAIT seconds, default 120): builds run
// under sanitizers in CI, slowly; a shorter one suits trying the harness.
export const WAIT = 1000 * (Number(process.env.KILN_UI_WAIT) || 120);

export async function api(method, path, { token, body, raw } = {}) {
	const headers = {};
	if (token)
		headers.Authorization = `Bearer ${token}`;
	if (body !== undefined)
		headers['Content-Type'] = 'application/json';
	const r = await fetch(BASE + path, {
		method, headers,
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const buf = Buffer.from(await r.arrayBuffer());
	let json = null;
	if (!raw) {
		try { json = JSON.parse(buf.toString('utf8')); } catch { /* not JSON */ }
	}
	return { status: r.status, json, buf, text: buf.toString('utf8') };
}

// submit(COMMAND, opts): a job of the test repository for linux/amd64
// building with a command recipe; returns its id.
export async function submit(command, { token, cache = false } = {}) {
	const r = await api('POST', '/v1/jobs', {
		token,
		body: {
			repo: REPO, ref: 'main', targets: ['linux/amd64'], cache,
			recipe: { kind: 'command', command },
		},
	});
	if (r.status !== 201)
		throw new Error(`POST /v1/jobs answered ${r.status}: ${r.text}`);
	return r.json.id;
}

const ENDED = new Set(['succeeded', 'failed', 'canceled']);
export async function waitJob(id, { token, until = s => ENDED.has(s), ms = WAIT } = {}) {
	const end = Date.now() + ms;
	let j = null;
	while (Date.now() < end) {
		j = (await api('GET', `/v1/jobs/${id}`, { token })).json;
		if (j && until(j.state, j))
			return j;
		await new Promise(r => setTimeout(r, 200));
	}
	throw new Error(`job ${id} still '${j && j.state}' after ${ms / 1000}s`);
}

export async function waitTarget(id, want, { token, ms = WAIT } = {}) {
	return waitJob(id, {
		token, ms,
		until: (_, j) => j.targets && j.targets[0] && want.includes(j.targets[0].state),
	});
}

export function sha256(buf) {
	return createHash('sha256').update(buf).digest('hex');
}

// shot(page, NAME): a full-page screenshot into the output directory.
export async function shot(page, name) {
	await page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
}

// "rgb(r, g, b)" or "rgba(...)" -> [r, g, b]; null otherwise.
export function rgb(css) {
	const m = /rgba?\(\s*(\d+)[, ]+(\d+)[, ]+(\d+)/.exec(css || '');
	return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

// Green-ish: a hue between yellow-green and cyan-green, not grey.  Either
// the row's background or the state's text colour carries it; light
// backgrounds (pale green) count.
export function greenish(c) {
	if (c === null)
		return false;
	const [r, g, b] = c, max = Math.max(r, g, b), min = Math.min(r, g, b);
	if (max !== g || max - min < 15)
		return false;
	const hue = 60 * (2 + (b - r) / (max - min));
	return hue >= 75 && hue <= 170;
}

// Red-ish, for an ANSI red span: red clearly the strongest channel.
export function reddish(c) {
	return c !== null && c[0] > c[1] + 60 && c[0] > c[2] + 60;
}
