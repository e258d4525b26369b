// The queue's health (#/health): /v1/info and /healthz; pause and resume
// for an admin token.
import { el, clear } from './dom.js';
import { getJSON, postJSON, caller, scopeAtLeast, showError,
    clearAuthNeeded } from './api.js';
import { getToken } from './token.js';

const POLL_MS = 5000;

export function renderHealth(main) {
	const box = el('div', { id: 'queue-health' });
	const actions = el('div', { class: 'actions' });
	clear(main);
	main.appendChild(el('section', { id: 'health-page' },
	    el('h1', null, 'Health'), actions, box));
	let gone = false, timer = 0;

	const row = (dl, k, v, cls) => {
		if (v === undefined || v === null)
			return;
		dl.appendChild(el('dt', null, k));
		dl.appendChild(el('dd', { class: cls }, String(v)));
	};

	async function act(what) {
		try {
			await postJSON(`/v1/admin/${what}`, {});
			showError(null);
		} catch (e) {
			showError(e);
		}
		refresh();
	}

	async function refresh() {
		let info = null, hz = null;
		const c = await caller();
		info = c.info;
		try {
			hz = await getJSON('/healthz');
		} catch (e) {
			hz = { status: e.message };
		}
		if (gone)
			return;
		if (info)
			clearAuthNeeded();
		const paused = info ? info.paused : hz.builds_paused;
		const dl = el('dl', { class: 'facts' });
		row(dl, 'Status', hz.status, 'status');
		row(dl, 'Builds', paused === undefined ? undefined :
		    paused ? 'paused' : 'running', paused ? 'paused' : 'running');
		row(dl, 'Jobs queued', hz.jobs_queued, 'queued');
		row(dl, 'Jobs running', hz.jobs_running, 'running-jobs');
		row(dl, 'Builds running', hz.builds_running, 'builds-running');
		if (info) {
			row(dl, 'Workers', info.workers);
			row(dl, 'Loop lag, max (ms)', info.loop_lag_max_ms, 'lag');
			row(dl, 'Loop lag, 1 min max (ms)', info.loop_lag_1m_max_ms);
			row(dl, 'Loop lag, 1 min p99 (ms)', info.loop_lag_1m_p99_ms);
			row(dl, 'Version', info.version);
			row(dl, 'Schema', info.schema);
			row(dl, 'Uptime (s)', info.uptime_s);
			row(dl, 'Tokens required', info.tokens_required ? 'yes' : 'no');
			if (info.caller)
				row(dl, 'Your scope', info.caller.scope);
		}
		box.replaceChildren(dl);
		actions.replaceChildren();
		if (getToken() && scopeAtLeast(c.scope, 'admin')) {
			actions.appendChild(paused ?
			    el('button', { id: 'resume', type: 'button',
				onclick: () => act('resume') }, 'Resume builds') :
			    el('button', { id: 'pause', type: 'button', class: 'danger',
				onclick: () => act('pause') }, 'Pause builds'));
		}
		if (!gone)
			timer = setTimeout(refresh, POLL_MS);
	}
	refresh();
	return () => {
		gone = true;
		clearTimeout(timer);
	};
}
