// The jobs page (#/): newest first, the API's cursor for more, filters,
// and live updates from /v1/events (a refresh every 5 s without it).
// The state filter is the API's (?state=); project and repository are
// filtered here, on the jobs each page brings.
import { el, clear, table, fmtTime, fmtDuration } from './dom.js';
import { getJSON, showError, clearAuthNeeded } from './api.js';
import { EventStream } from './sse.js';
import { setLive } from './live.js';

const STATES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const POLL_MS = 5000;

function targetsSummary(job) {
	const t = Array.isArray(job.targets) ? job.targets : [];
	const n = {};
	for (const x of t)
		n[x.state] = (n[x.state] || 0) + 1;
	const parts = [];
	for (const s of STATES)
		if (n[s])
			parts.push(`${n[s]} ${s}`);
	return `${t.length}: ${parts.join(', ')}`;
}

function row(job) {
	const id = String(job.id);
	return el('tr', { data: { job: id }, class: `state-${job.state}` },
	    el('td', { class: 'num' }, el('a', { href: `#/jobs/${id}` }, id)),
	    el('td', { class: `state state-${job.state}` }, job.state),
	    el('td', { class: 'mono' }, job.repo || ''),
	    el('td', { class: 'mono' }, job.ref || ''),
	    el('td', null, job.project || ''),
	    el('td', { class: 'hide-narrow' }, targetsSummary(job)),
	    el('td', { class: 'hide-narrow' }, fmtTime(job.created_at)),
	    el('td', { class: 'duration' },
		fmtDuration(job.started_at, job.finished_at)));
}

export function renderJobs(main) {
	const stateSel = el('select', { id: 'filter-state' },
	    el('option', { value: '' }, 'any'),
	    STATES.map(s => el('option', { value: s }, s)));
	const project = el('input', { id: 'filter-project', type: 'search',
	    placeholder: 'project', autocomplete: 'off' });
	const repo = el('input', { id: 'filter-repo', type: 'search',
	    placeholder: 'repository contains', autocomplete: 'off' });
	const t = table('jobs', ['Job', 'State', 'Repository', 'Ref', 'Project',
	    { text: 'Targets', class: 'hide-narrow' },
	    { text: 'Created', class: 'hide-narrow' }, 'Duration']);
	const more = el('button', { id: 'more', type: 'button', hidden: true },
	    'More');
	const empty = el('p', { class: 'empty', hidden: true }, 'No jobs.');
	clear(main);
	main.appendChild(el('section', { id: 'jobs-page' },
	    el('h1', null, 'Jobs'),
	    el('div', { class: 'filters' },
		el('label', null, 'State', stateSel),
		el('label', null, 'Project', project),
		el('label', null, 'Repository', repo)),
	    t.box, empty, more));

	let next = null, gen = 0, stream = null, poll = 0, gone = false;
	const rows = new Map();		// id -> tr

	const wanted = job => {
		const p = project.value.trim(), r = repo.value.trim();
		if (stateSel.value && job.state !== stateSel.value)
			return false;
		if (p && (job.project || '') !== p)
			return false;
		if (r && !String(job.repo || '').includes(r))
			return false;
		return true;
	};
	const listUrl = after => {
		const q = new URLSearchParams();
		if (stateSel.value)
			q.set('state', stateSel.value);
		if (after)
			q.set('after', after);
		const s = q.toString();
		return '/v1/jobs' + (s ? '?' + s : '');
	};
	const showEmpty = () => {
		empty.hidden = rows.size > 0;
	};

	// Put job's row in place: replaced if shown, else inserted in id
	// order (newest first).
	const upsert = job => {
		const id = Number(job.id);
		const old = rows.get(id);
		if (!wanted(job)) {
			if (old) {
				old.remove();
				rows.delete(id);
			}
			return;
		}
		const tr = row(job);
		if (old) {
			old.replaceWith(tr);
		} else {
			let before = null;
			for (const r of t.tbody.children)
				if (Number(r.dataset.job) < id) {
					before = r;
					break;
				}
			// Older than every row shown while more pages remain:
			// it belongs to a page not loaded yet.
			if (!before && next !== null && rows.size > 0)
				return;
			t.tbody.insertBefore(tr, before);
		}
		rows.set(id, tr);
	};

	async function load(after) {
		const g = gen;
		try {
			const page = await getJSON(listUrl(after));
			if (g !== gen || gone)
				return;
			clearAuthNeeded();
			showError(null);
			if (!after) {
				// The first page: anything newer is added, what is
				// shown is brought up to date.
				if (next === null || rows.size === 0)
					next = page.next;
				for (const j of [...page.jobs].reverse())
					upsert(j);
			} else {
				next = page.next;
				for (const j of page.jobs)
					upsert(j);
			}
			more.hidden = next === null || next === undefined;
		} catch (e) {
			if (g === gen && !gone)
				showError(e);
		}
		showEmpty();
	}

	function restart() {
		gen++;
		next = null;
		rows.clear();
		clear(t.tbody);
		load(null);
	}

	async function refreshJob(id) {
		try {
			const job = await getJSON(`/v1/jobs/${id}`);
			if (!gone)
				upsert(job);
		} catch (e) { /* gone or not readable: the next resync tells */ }
		showEmpty();
	}

	stateSel.addEventListener('change', restart);
	let typing = 0;
	for (const i of [project, repo])
		i.addEventListener('input', () => {
			clearTimeout(typing);
			typing = setTimeout(restart, 250);
		});
	more.addEventListener('click', () => {
		if (next !== null && next !== undefined)
			load(next);
	});

	const startPolling = () => {
		setLive(false);
		if (!poll)
			poll = setInterval(() => load(null), POLL_MS);
	};
	stream = new EventStream('/v1/events', {
		onOpen: () => setLive(true),
		onDown: () => setLive(false),
		onMissing: startPolling,
		onEvent: ev => {
			if (ev.event === 'resync') {
				load(null);
				return;
			}
			let d;
			try {
				d = JSON.parse(ev.data);
			} catch (e) {
				return;
			}
			const id = ev.event === 'job' ? d.id :
			    ev.event === 'target' ? d.job : null;
			if (Number.isInteger(id))
				refreshJob(id);
		},
	});
	load(null);
	return () => {
		gone = true;
		clearInterval(poll);
		clearTimeout(typing);
		stream.close();
		setLive(false);
	};
}
