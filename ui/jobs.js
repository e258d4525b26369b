// The jobs page (#/): newest first, the API's cursor for more, filters,
// and live updates from /v1/events (a refresh every 5 s without it).
// The filters are the API's (?state=, ?project=, ?repo=, exact), so each
// page and its cursor are those of the filtered list.  The hash carries
// them (#/?state=failed&project=x): a filtered view can be linked.
import { el, clear, table, fmtTime, fmtDuration } from './dom.js';
import { getJSON, showError, clearAuthNeeded } from './api.js';
import { EventStream } from './sse.js';
import { setLive } from './live.js';

const STATES = ['queued', 'running', 'succeeded', 'failed', 'canceled'];
const POLL_MS = 5000;
const FILTERS = ['state', 'project', 'repo'];

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
	    el('td', { class: 'mono repo' }, job.repo || ''),
	    el('td', { class: 'mono ref' }, job.ref || ''),
	    el('td', { class: 'hide-narrow' }, job.project || ''),
	    el('td', { class: 'hide-narrow' }, targetsSummary(job)),
	    el('td', { class: 'hide-narrow' }, fmtTime(job.created_at)),
	    el('td', { class: 'duration hide-narrow' },
		fmtDuration(job.started_at, job.finished_at)));
}

// The filters as the hash of this page carries them: #/?state=..&...
function filtersHash(f) {
	const q = new URLSearchParams();
	for (const k of FILTERS)
		if (f[k])
			q.set(k, f[k]);
	const s = q.toString();
	return '#/' + (s ? '?' + s : '');
}

// params: the URLSearchParams of the hash (#/?state=failed&project=x).
export function renderJobs(main, params) {
	params = params || new URLSearchParams();
	const stateSel = el('select', { id: 'filter-state' },
	    el('option', { value: '' }, 'any'),
	    STATES.map(s => el('option', { value: s }, s)));
	const project = el('input', { id: 'filter-project', type: 'search',
	    placeholder: 'project', autocomplete: 'off' });
	const repo = el('input', { id: 'filter-repo', type: 'search',
	    placeholder: 'exact repository URL', autocomplete: 'off' });
	const initial = params.get('state') || '';
	if (STATES.includes(initial))
		stateSel.value = initial;
	project.value = params.get('project') || '';
	repo.value = params.get('repo') || '';
	// On a phone: job, state, repository and ref; the rest are
	// hide-narrow.
	const t = table('jobs', ['Job', 'State', 'Repository', 'Ref',
	    { text: 'Project', class: 'hide-narrow' },
	    { text: 'Targets', class: 'hide-narrow' },
	    { text: 'Created', class: 'hide-narrow' },
	    { text: 'Duration', class: 'hide-narrow' }]);
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

	const filters = () => ({ state: stateSel.value,
	    project: project.value.trim(), repo: repo.value.trim() });
	// A job an event brought is shown only if the server's filters
	// would have listed it: the same exact matches.
	const wanted = job => {
		const f = filters();
		if (f.state && job.state !== f.state)
			return false;
		if (f.project && (job.project || '') !== f.project)
			return false;
		if (f.repo && (job.repo || '') !== f.repo)
			return false;
		return true;
	};
	const listUrl = after => {
		const f = filters();
		const q = new URLSearchParams();
		for (const k of FILTERS)
			if (f[k])
				q.set(k, f[k]);
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
		// Replaced, not pushed: no hashchange, so the page stays as it
		// is (the router would draw it again).
		const h = filtersHash(filters());
		if (location.hash !== h)
			history.replaceState(null, '', h);
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
