// kilnd's API: fetch with the token, problem+json errors, the caller's
// scope.
import { $ } from './dom.js';
import { getToken, showTokenForm } from './token.js';

export class ApiError extends Error {
	constructor(status, title, detail) {
		super(detail ? `${title}: ${detail}` : title);
		this.status = status;
		this.title = title;
		this.detail = detail;
	}
}

export function authHeaders(extra) {
	const h = Object.assign({}, extra || {});
	const t = getToken();
	if (t)
		h.Authorization = 'Bearer ' + t;
	return h;
}

// A read answered 401: say so and offer the token form.
let formForAuth = false;

export function authNeeded() {
	$('#auth-needed').hidden = false;
	if ($('#token-form').hidden) {
		formForAuth = true;
		showTokenForm();
	}
}

// A read succeeded: the form opened for a 401 closes again.
export function clearAuthNeeded() {
	$('#auth-needed').hidden = true;
	if (formForAuth) {
		formForAuth = false;
		$('#token-form').hidden = true;
	}
}

async function problem(res) {
	let title = res.statusText || 'error', detail = '';
	try {
		const ct = res.headers.get('Content-Type') || '';
		if (ct.includes('json')) {
			const p = await res.json();
			if (p && typeof p.title === 'string')
				title = p.title;
			if (p && typeof p.detail === 'string')
				detail = p.detail;
		} else {
			detail = (await res.text()).slice(0, 500);
		}
	} catch (e) { /* the status says enough */ }
	return new ApiError(res.status, `${res.status} ${title}`, detail);
}

// fetch() a path of the API; throws ApiError unless 2xx.
export async function apiFetch(path, opts) {
	const o = Object.assign({ cache: 'no-cache' }, opts || {});
	o.headers = authHeaders(o.headers);
	let res;
	try {
		res = await fetch(path, o);
	} catch (e) {
		throw new ApiError(0, 'kilnd is not reachable', String(e.message || e));
	}
	if (res.status === 401)
		authNeeded();
	if (!res.ok)
		throw await problem(res);
	return res;
}

export async function getJSON(path, opts) {
	const res = await apiFetch(path, opts);
	return res.json();
}

export async function postJSON(path, body) {
	const res = await apiFetch(path, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json' },
		body: JSON.stringify(body === undefined ? {} : body),
	});
	const ct = res.headers.get('Content-Type') || '';
	return ct.includes('json') ? res.json() : null;
}

const SCOPES = ['none', 'read', 'submit', 'admin'];

// What this caller may do: {scope, tokensRequired} from /v1/info's
// caller (a kilnd without it: admin on a farm without tokens, else
// unknown, which the buttons treat as enough: kilnd checks anyway).
export async function caller() {
	try {
		const info = await getJSON('/v1/info');
		if (info.caller && typeof info.caller.scope === 'string')
			return { scope: info.caller.scope, info };
		return { scope: info.tokens_required ? 'unknown' : 'admin', info };
	} catch (e) {
		return { scope: 'none', info: null, error: e };
	}
}

// Whether `have` (a scope name) is at least `want`.
export function scopeAtLeast(have, want) {
	if (have === 'unknown')
		return true;
	return SCOPES.indexOf(have) >= SCOPES.indexOf(want);
}

export function showError(e) {
	const b = $('#error');
	if (!e) {
		b.hidden = true;
		b.textContent = '';
		return;
	}
	if (e instanceof ApiError && e.status === 401)
		return;		// #auth-needed says it
	b.textContent = e instanceof Error ? e.message : String(e);
	b.hidden = false;
}
